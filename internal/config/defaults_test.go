package config

import (
	"reflect"
	"testing"
	"time"
)

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	c := &Config{
		TLS: &TLS{CertFile: "c", KeyFile: "k"},
		Services: []Service{
			{Name: "a", URL: "http://a"},
			{Name: "b", Targets: []Target{{URL: "http://b1"}, {URL: "http://b2", Weight: 5}}},
		},
	}
	c.ApplyDefaults()
	want := &Config{
		Listen: ":8080",
		TLS:    &TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.2", HSTS: &HSTS{MaxAge: DefaultHSTSMaxAge}},
		Admin:  Admin{Listen: "127.0.0.1:9901", PublicPaths: []string{"/health", "/ready"}},
		Server: Server{
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(75 * time.Second),
			ReadBodyTimeout:   Duration(30 * time.Second),
			MinBodyRate:       500,
			WriteTimeout:      Duration(60 * time.Second),
			MaxHeaderBytes:    32 << 10,
			MaxConnections:    10000,
			DrainTimeout:      Duration(30 * time.Second),
			HealthPath:        "/health",
			ReadyPath:         "/ready",

			UnderscoresInHeaders: "protected",
		},
	}
	timeouts := Timeouts{Connect: Duration(5 * time.Second), ResponseHeader: Duration(60 * time.Second)}
	want.Services = []Service{
		{Name: "a", URL: "http://a", Targets: []Target{{URL: "http://a", Weight: 1}}, Timeouts: timeouts,
			MaxIdleConns: 256, IdleConnTimeout: Duration(time.Minute), LoadBalancer: LoadBalancer{Algorithm: "round_robin"}},
		{Name: "b", Targets: []Target{{URL: "http://b1", Weight: 1}, {URL: "http://b2", Weight: 5}}, Timeouts: timeouts,
			MaxIdleConns: 256, IdleConnTimeout: Duration(time.Minute), LoadBalancer: LoadBalancer{Algorithm: "round_robin"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
	// Idempotent.
	c.ApplyDefaults()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("second call: got %+v, want %+v", c, want)
	}
}

func TestApplyDefaultsKeepsSetValues(t *testing.T) {
	t.Parallel()
	c := &Config{
		Listen: ":1", Admin: Admin{Listen: "off", PublicPaths: []string{}},
		Server:   Server{MaxConnections: 7, HealthPath: "off", ReadyPath: "/r"},
		Services: []Service{{Name: "a", URL: "http://a", Timeouts: Timeouts{Connect: 1, Total: 2}, MaxIdleConns: 3}},
	}
	c.ApplyDefaults()
	s := c.Services[0]
	if c.Listen != ":1" || c.Admin.Listen != "off" || c.Server.MaxConnections != 7 || c.Server.HealthPath != "off" ||
		c.Server.ReadyPath != "/r" || c.Admin.PublicPaths == nil || len(c.Admin.PublicPaths) != 0 || s.Timeouts.Connect != 1 || s.Timeouts.Total != 2 || s.MaxIdleConns != 3 || c.TLS != nil {
		t.Errorf("got %+v, want set values kept", c)
	}
}

// TestServerSettingsReloadOrRestart: every server setting is either one a
// reload applies or one RestartOnlyDiffers reports, so a new field cannot
// be silently half-applied by a reload.
func TestServerSettingsReloadOrRestart(t *testing.T) {
	reloadable := map[string]bool{"ProxyHeaders": true, "UnderscoresInHeaders": true,
		"ReadBodyTimeout": true, "MinBodyRate": true}
	var base Server
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		changed := base
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Int, reflect.Int64:
			v.SetInt(7)
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"X-A"}))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", f.Name, v.Kind())
		}
		if got := base.RestartOnlyDiffers(&changed); got == reloadable[f.Name] {
			t.Errorf("server.%s: RestartOnlyDiffers %v, want %v (reloadable %v)", f.Name, got, !reloadable[f.Name], reloadable[f.Name])
		}
	}
}

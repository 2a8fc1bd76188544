package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// validConfig returns a config built in Go, as tests of other packages do.
func validConfig() *Config {
	c := &Config{
		Services: []Service{
			{Name: "orders", URL: "http://127.0.0.1:3001"},
			{Name: "users", Targets: []Target{{URL: "http://10.0.0.1"}, {URL: "http://[::1]:8080/", Weight: 3}}},
		},
		Routes: []Route{
			{Name: "orders", Service: "orders", Match: Match{Paths: []string{"/api/orders", "=/api/orders/count"}}},
			{Name: "users", Service: "users", Match: Match{
				Paths:   []string{"~^/api/users/[0-9]+$"},
				Methods: []string{"GET", "PURGE", "M-SEARCH"},
				Hosts:   []string{"api.example.com", "*.example.org", "127.0.0.1"},
				Headers: map[string]string{"X-Version": "2"},
				Query:   map[string]string{"debug": ""},
			}},
		},
	}
	c.ApplyDefaults()
	return c
}

func TestValidateAcceptsHandBuiltConfig(t *testing.T) {
	t.Parallel()
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
}

// TestValidate changes one thing in a valid config and checks the errors.
// A hand-built config has no positions, so errors print without a file.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"admin off", func(c *Config) { c.Admin.Listen = "off" }, nil},
		{"listen port 0 twice", func(c *Config) { c.Listen, c.Admin.Listen, c.Admin.Insecure = ":0", ":0", true }, nil},
		{"listen host name", func(c *Config) { c.Listen = "localhost:8080" }, nil},
		{"listen bad port", func(c *Config) { c.Listen = ":http" }, []string{"listen: port must be a number from 0 to 65535"}},
		{"listen bad host", func(c *Config) { c.Listen = "a b:80" }, []string{"listen: host must be an IP address or a host name"}},
		{"admin same as listen", func(c *Config) { c.Admin.Listen, c.Admin.Insecure = "0.0.0.0:8080", true }, []string{"admin.listen: must differ from listen"}},
		{"admin other host same port", func(c *Config) { c.Listen, c.Admin.Listen, c.Admin.Insecure = "10.0.0.1:80", "10.0.0.2:80", true }, nil},
		{"tls ok", func(c *Config) { c.TLS = &TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.3"} }, nil},
		{"tls acme without files", func(c *Config) {
			c.TLS = &TLS{MinVersion: "1.2", ACME: &ACME{Domains: []string{"api.example.com"}}}
			c.TLS.ACME.applyDefaults()
		}, nil},
		{"tls acme http-01 only without a plain listener", func(c *Config) {
			c.TLS = &TLS{MinVersion: "1.2", ACME: &ACME{Domains: []string{"api.example.com"}, Challenges: []string{"http-01"}}}
			c.TLS.ACME.applyDefaults()
		}, []string{"tls.acme.challenges: http-01 is answered on plain listeners and there is none: add one (port 80) or allow tls-alpn-01"}},
		{"tls empty version", func(c *Config) { c.TLS = &TLS{CertFile: "c", KeyFile: "k"} }, []string{`tls.min_version: must be "1.2" or "1.3"`}},
		{"tls client auth", func(c *Config) {
			c.TLS = &TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.2",
				ClientAuth: &ClientAuth{CAFiles: []string{"ca.pem", "more.pem"}, CRLFiles: []string{"ca.crl"}}}
		}, nil},
		{"tls client auth mode request", func(c *Config) {
			c.TLS = &TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.2", ClientAuth: &ClientAuth{Mode: "request", CAFiles: []string{"ca.pem"}}}
		}, nil},
		{"tls client auth errors", func(c *Config) {
			c.TLS = &TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.2",
				ClientAuth: &ClientAuth{Mode: "optional", CRLFiles: []string{"a.crl", "", "a.crl"}}}
		}, []string{
			`tls.client_auth.mode: must be "require" or "request"`,
			"tls.client_auth.ca_files: is required: PEM files of the CAs that issue the client certificates",
			"tls.client_auth.crl_files[1]: must be a file path",
			"tls.client_auth.crl_files[2]: is already listed at tls.client_auth.crl_files[0]",
		}},
		{"server limits", func(c *Config) {
			c.Server.MaxHeaderBytes, c.Server.MaxConnections = 512, 0
		}, []string{"server.max_header_bytes: must be between 1KiB and 1MiB", "server.max_connections: must be at least 1"}},
		{"probes off", func(c *Config) { c.Server.HealthPath, c.Server.ReadyPath = "off", "off" }, nil},
		{"probes equal", func(c *Config) { c.Server.ReadyPath = "/health" }, []string{"server.ready_path: must differ from health_path"}},
		{"probe path", func(c *Config) { c.Server.HealthPath = "/a b" }, []string{`server.health_path: path must not contain " "; percent-encode it`}},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "::1", "10.0.0.0/40"} },
			[]string{`trusted_proxies[2]: must be a CIDR like "10.0.0.0/8" or an IP address`}},
		{"service name charset", func(c *Config) { c.Services[0].Name = "a/b"; c.Routes[0].Service = "a/b" },
			[]string{`services[0].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`}},
		{"service name too long", func(c *Config) {
			c.Services[0].Name = strings.Repeat("a", 64)
			c.Routes[0].Service = c.Services[0].Name
		}, []string{`services[0].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`}},
		{"service name 63", func(c *Config) {
			c.Services[0].Name = "A0._-" + strings.Repeat("a", 58)
			c.Routes[0].Service = c.Services[0].Name
		}, nil},
		{"weight zero without defaults", func(c *Config) { c.Services[1].Targets[0].Weight = 0 },
			[]string{"services[1].targets[0].weight: must be between 1 and 1000"}},
		{"host header", func(c *Config) { c.Services[0].HostHeader = "api.example.com:8443" }, nil},
		{"bad host header", func(c *Config) { c.Services[0].HostHeader = "a\r\nb" },
			[]string{"services[0].host_header: must be a host name, optionally with :port"}},
		{"negative idle conns", func(c *Config) { c.Services[0].MaxIdleConns = -1 },
			[]string{"services[0].max_idle_conns: must be between 0 and 100000"}},
		{"no services", func(c *Config) { c.Services = nil },
			[]string{`routes[0].service: unknown service "orders"; no services are defined`, `routes[1].service: unknown service "users"; no services are defined`}},
		{"target with empty port", func(c *Config) { c.Services[0].URL = "http://h:"; c.Services[0].Targets = nil },
			[]string{"services[0].url: port must be a number from 1 to 65535"}},
		{"bad percent in url", func(c *Config) { c.Services[0].URL = "http://h/%zz"; c.Services[0].Targets = nil },
			[]string{`services[0].url: must be an absolute http or https URL, like "http://127.0.0.1:3001"`}},
		{"regex with captures", func(c *Config) {
			c.Routes[1].PathRewrite = &PathRewrite{Pattern: "^/api/users/(?P<id>[0-9]+)$", Replacement: "${id}"}
		}, nil},
		{"exact root", func(c *Config) { c.Routes[0].Match.Paths = []string{"=/"} }, nil},
		{"encoded path", func(c *Config) { c.Routes[0].Match.Paths = []string{"/a%2Fb/@:!$&'()*+,=-._~/caf%C3%A9/100%25"} }, nil},
		{"path parameter", func(c *Config) { c.Routes[0].Match.Paths = []string{"/admin;x"} },
			[]string{`routes[0].match.paths[0]: path must not contain ";", raw or encoded: requests with path parameters are refused`}},
		{"wildcard only", func(c *Config) { c.Routes[0].Match.Hosts = []string{"*"} },
			[]string{`routes[0].match.hosts[0]: "*" is allowed only as the whole first label, like "*.example.com"`}},
		{"trailing dot", func(c *Config) { c.Routes[0].Match.Hosts = []string{"example.com."} },
			[]string{`routes[0].match.hosts[0]: invalid host: use a DNS name like "api.example.com" or a wildcard like "*.example.com"`}},
		{"same path other host", func(c *Config) {
			c.Routes[1].Match = Match{Paths: []string{"/api/orders"}, Hosts: []string{"b.example.com"}}
		}, nil},
		{"same path other headers", func(c *Config) {
			c.Routes[1].Match = Match{Paths: []string{"/api/orders"}, Headers: map[string]string{"X-A": "1"}}
		}, nil},
		{"same key with header case", func(c *Config) {
			c.Routes[0].Match.Headers = map[string]string{"x-a": "1"}
			c.Routes[1].Match = Match{Paths: []string{"/api/orders"}, Headers: map[string]string{"X-A": "1"}}
		}, []string{`routes[1].match.paths[0]: duplicates route "orders": same hosts, methods, path, headers and query`}},
		{"duplicate of unnamed route", func(c *Config) {
			c.Routes[0].Name = ""
			c.Routes[1].Match = Match{Paths: []string{"/api/orders"}}
		}, []string{"routes[0].name: is required", `routes[1].match.paths[0]: duplicates route "routes[0]": same hosts, methods, path, headers and query`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.change(c)
			var got []string
			if err := c.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidateIsPure(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.TLS = &TLS{CertFile: "/does/not/exist.crt", KeyFile: "/does/not/exist.key", MinVersion: "1.2",
		ClientAuth: &ClientAuth{CAFiles: []string{"/does/not/exist-ca.pem"}, CRLFiles: []string{"/does/not/exist.crl"}}}
	before := fmt.Sprintf("%+v", *c)
	if err := c.Validate(); err != nil {
		t.Fatalf("got %v, want nil: files are not read", err)
	}
	if after := fmt.Sprintf("%+v", *c); after != before {
		t.Errorf("Validate changed the config:\n%s\n%s", before, after)
	}
}

func TestLocate(t *testing.T) {
	c := &Config{File: "portico.yaml", pos: map[string]Pos{
		"routes":                      {Line: 10, Col: 1},
		"routes[2]":                   {Line: 20, Col: 5},
		"routes[2].plugins":           {Line: 24, Col: 5},
		"routes[2].plugins.jwt":       {Line: 25, Col: 7},
		"routes[2].plugins.jwt.x":     {Line: 26, Col: 9},
		"routes[2].match.headers.a.b": {Line: 30, Col: 9},
	}}
	root := Path{}.Index("routes", 2)
	tests := []struct {
		name string
		path Path
		want string
	}{
		{"exact", root.Key("plugins").Key("jwt").Key("x"), "portico.yaml:26:9: routes[2].plugins.jwt.x: m"},
		{"parent", root.Key("plugins").Key("jwt").Key("algorithms"), "portico.yaml:25:7: routes[2].plugins.jwt.algorithms: m"},
		{"index below", root.Key("plugins").Key("jwt").Key("keys").At(3).Key("kid"), "portico.yaml:25:7: routes[2].plugins.jwt.keys[3].kid: m"},
		{"sequence", Path{}.Index("routes", 7), "portico.yaml:10:1: routes[7]: m"},
		{"dotted key", root.Key("match").Key("headers").Key("a.b"), "portico.yaml:30:9: routes[2].match.headers.a.b: m"},
		{"nothing recorded", Path{}.Key("plugins").Key("cors"), "portico.yaml: plugins.cors: m"},
		{"root", Path{}, "portico.yaml: (root): m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := c.Locate(tt.path.Errorf("m"))
			if err.Error() != tt.want {
				t.Errorf("got %q, want %q", err, tt.want)
			}
		})
	}
}

func TestLocateWalksErrorTree(t *testing.T) {
	t.Parallel()
	c := &Config{File: "portico.yaml", pos: map[string]Pos{"a": {Line: 1, Col: 1}, "b": {Line: 2, Col: 3}}}
	fa := Path{}.Key("a").Errorf("first").(*FieldError)
	fb := Path{}.Key("b").Errorf("second").(*FieldError)
	fc := &FieldError{File: "other.yaml", Line: 9, Col: 9, Path: Path{}.Key("a"), Msg: "already located"}
	tree := errors.Join(
		fmt.Errorf("plugin jwt: %w", fa),
		errors.Join(fb, errors.New("plain"), nil),
		fc,
	)
	if got := c.Locate(tree); got != tree {
		t.Errorf("got a different error back, want the same tree")
	}
	if fa.File != "portico.yaml" || fa.Line != 1 {
		t.Errorf("wrapped error: got %s:%d, want portico.yaml:1", fa.File, fa.Line)
	}
	if got, want := fb.Error(), "portico.yaml:2:3: b: second"; got != want {
		t.Errorf("joined error: got %q, want %q", got, want)
	}
	if got, want := fc.Error(), "other.yaml:9:9: a: already located"; got != want {
		t.Errorf("located error: got %q, want %q", got, want)
	}
	if c.Locate(nil) != nil {
		t.Error("got non-nil for nil")
	}
	var hand Config
	if got, want := hand.Locate(Path{}.Key("x").Errorf("m")).Error(), "x: m"; got != want {
		t.Errorf("hand-built config: got %q, want %q", got, want)
	}
}

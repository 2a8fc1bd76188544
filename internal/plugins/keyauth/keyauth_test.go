package keyauth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
)

const (
	appKey    = "app-key-0123456789abcdef"
	hashedKey = "hashed-key-0123456789abcdef"
)

func consumers() []config.Consumer {
	d := sha256.Sum256([]byte(hashedKey))
	return []config.Consumer{
		{Name: "app", ID: "app-1", Groups: []string{"admins", "ops"},
			Credentials: config.Credentials{APIKeys: []config.Secret{appKey}}},
		{Name: "hashed", Credentials: config.Credentials{APIKeys: []config.Secret{config.Secret("sha256:" + hex.EncodeToString(d[:]))}}},
		{Name: "guest", Groups: []string{"guests"}},
	}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestKeyAuth(t *testing.T) {
	t.Parallel()
	plain := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), ""))
	query := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), "{query: apikey}"))
	hide := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), "{header: X-Key, query: apikey, hide_credentials: true}"))
	anon := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), ""),
		authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))

	tests := []struct {
		name       string
		gw         *authtest.Gateway
		target     string
		header     http.Header
		wantStatus int
		wantDetail string
		wantID     string // X-Consumer-ID upstream
		wantQuery  string // upstream raw query
		wantKeyHdr string // key header upstream
	}{
		{"missing key", plain, "/", nil, 401, "no API key found in request", "", "", ""},
		{"empty key", plain, "/", hdr("X-API-Key", ""), 401, "no API key found in request", "", "", ""},
		{"wrong key", plain, "/", hdr("X-API-Key", "nope-nope-nope-nope"), 401, "invalid API key", "", "", ""},
		{"prefix of a key", plain, "/", hdr("X-API-Key", appKey[:len(appKey)-1]), 401, "invalid API key", "", "", ""},
		{"key in header", plain, "/", hdr("X-Api-Key", appKey), 200, "", "app-1", "", appKey},
		{"digest-configured key", plain, "/", hdr("X-API-Key", hashedKey), 200, "", "hashed", "", hashedKey},
		{"the digest is not a key", plain, "/", hdr("X-API-Key", "sha256:"+strings.Repeat("0", 64)), 401, "invalid API key", "", "", ""},
		{"query ignored unless configured", plain, "/?apikey=" + appKey, nil, 401, "no API key found in request", "", "", ""},
		{"forged identity without a key", plain, "/", hdr("X-Consumer-ID", "admin"), 401, "no API key found in request", "", "", ""},
		{"forged identity with a key", plain, "/", hdr("X-API-Key", appKey, "X-Consumer-ID", "admin", "X-User-ID", "root"), 200, "", "app-1", "", appKey},
		{"key in query", query, "/?a=1&apikey=" + appKey + "&b=%2B", nil, 200, "", "app-1", "a=1&apikey=" + appKey + "&b=%2B", ""},
		{"wrong key in query", query, "/?apikey=nope", nil, 401, "invalid API key", "", "", ""},
		{"hide header", hide, "/?a=1", hdr("X-Key", appKey), 200, "", "app-1", "a=1", ""},
		{"hide query keeps other params verbatim", hide, "/?a=1&apikey=" + appKey + "&b=x%20y&c", nil, 200, "", "app-1", "a=1&b=x%20y&c", ""},
		{"hide escaped query name", hide, "/?api%6Bey=" + appKey, nil, 200, "", "app-1", "", ""},
		{"anonymous fallback", anon, "/", hdr("X-Consumer-ID", "admin", "X-Anonymous-Consumer", "false"), 200, "", "guest", "", ""},
		{"anonymous fallback on a wrong key", anon, "/", hdr("X-API-Key", "nope-nope-nope-nope"), 200, "", "guest", "", "nope-nope-nope-nope"},
		{"anonymous route still authenticates", anon, "/", hdr("X-API-Key", appKey), 200, "", "app-1", "", appKey},
	}
	for _, tt := range tests {
		res := tt.gw.Do(t, tt.target, tt.header)
		if res.Status != tt.wantStatus {
			t.Errorf("%s: got status %d, want %d (%s)", tt.name, res.Status, tt.wantStatus, res.Body)
			continue
		}
		if tt.wantStatus != 200 {
			if res.Upstream != nil {
				t.Errorf("%s: got a request upstream, want none", tt.name)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != keyauth.Challenge {
				t.Errorf("%s: got WWW-Authenticate %q, want %q", tt.name, got, keyauth.Challenge)
			}
			if !strings.Contains(res.Body, `"detail":"`+tt.wantDetail+`"`) || !strings.Contains(res.Header.Get("Content-Type"), "problem+json") {
				t.Errorf("%s: got body %s, want problem detail %q", tt.name, res.Body, tt.wantDetail)
			}
			continue
		}
		up := res.Upstream
		if up == nil {
			t.Errorf("%s: got nothing upstream", tt.name)
			continue
		}
		if got := up.Header.Values("X-Consumer-ID"); len(got) != 1 || got[0] != tt.wantID {
			t.Errorf("%s: got X-Consumer-ID %q upstream, want %q", tt.name, got, tt.wantID)
		}
		if got := up.Header.Values("X-User-ID"); len(got) != 0 {
			t.Errorf("%s: got X-User-ID %q upstream, want none", tt.name, got)
		}
		if up.RawQuery != tt.wantQuery {
			t.Errorf("%s: got upstream query %q, want %q", tt.name, up.RawQuery, tt.wantQuery)
		}
		if got := up.Header.Get("X-API-Key") + up.Header.Get("X-Key"); got != tt.wantKeyHdr {
			t.Errorf("%s: got key header %q upstream, want %q", tt.name, got, tt.wantKeyHdr)
		}
		wantAnon := tt.wantID == "guest"
		if got := up.Header.Get("X-Anonymous-Consumer"); (got == "true") != wantAnon || !wantAnon && got != "" {
			t.Errorf("%s: got X-Anonymous-Consumer %q, want anonymous=%v", tt.name, got, wantAnon)
		}
	}
	res := plain.Do(t, "/", hdr("X-API-Key", appKey))
	if g := res.Upstream.Header.Get("X-Consumer-Groups"); g != "admins, ops" {
		t.Errorf("got X-Consumer-Groups %q, want %q", g, "admins, ops")
	}
	if n := res.Upstream.Header.Get("X-Consumer-Name"); n != "app" {
		t.Errorf("got X-Consumer-Name %q, want app", n)
	}
}

func TestCredentialIDHidesTheKey(t *testing.T) {
	t.Parallel()
	d := sha256.Sum256([]byte(appKey))
	got := keyauth.CredentialID(d)
	want := "key_auth:" + hex.EncodeToString(d[:])[:12]
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Contains(got, appKey[:8]) {
		t.Errorf("got %q, which contains the key", got)
	}
	// Through the chain: the Exchange records the id, not the key.
	reg, err := consumer.New(consumers())
	if err != nil {
		t.Fatal(err)
	}
	mw, err := keyauth.Registration().Build(&keyauth.Spec{Header: "X-API-Key"}, &pipeline.BuildEnv{Consumers: reg})
	if err != nil {
		t.Fatal(err)
	}
	ex := &pipeline.Exchange{}
	r := httptest.NewRequest("GET", "/", nil).WithContext(pipeline.NewContext(t.Context(), ex))
	r.Header.Set("X-API-Key", appKey)
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), r)
	if ex.Credential != want || ex.Consumer == nil || ex.Consumer.Name != "app" || ex.Auth.Passed != 1 {
		t.Errorf("got credential %q consumer %v auth %+v, want %q for app", ex.Credential, ex.Consumer, ex.Auth, want)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"{header: X-Key}", ""},
		{"{header: '', query: k}", ""},
		{"{header: ''}", "routes[0].plugins.key_auth.header: header or query must be set"},
		{"{header: 'X Key'}", "routes[0].plugins.key_auth.header: must be a header name like X-API-Key"},
		{"{query: 'a&b'}", "routes[0].plugins.key_auth.query: must be a plain query parameter name like apikey"},
		{"{headr: X}", `unknown key`},
	}
	for _, tt := range tests {
		_, err := authtest.TryConfigure(keyauth.Registration(), tt.src)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %s, want no error", tt.src, err.Error())
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}

func BenchmarkKeyAuth(b *testing.B) {
	reg, err := consumer.New(consumers())
	if err != nil {
		b.Fatal(err)
	}
	env := pipeline.BuildEnv{Consumers: reg}
	ka := keyauth.Registration()
	gate := authgate.Registration()
	h, err := pipeline.Chain([]pipeline.Configured{
		{Reg: &ka, Spec: ka.Spec()}, {Reg: &gate, Spec: gate.Spec()},
	}, env, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if err != nil {
		b.Fatal(err)
	}
	ex := &pipeline.Exchange{}
	r := httptest.NewRequest("GET", "/", nil).WithContext(pipeline.NewContext(b.Context(), ex))
	r.Header.Set("X-API-Key", appKey)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		*ex = pipeline.Exchange{}
		h.ServeHTTP(w, r)
		if ex.Consumer == nil {
			b.Fatal("not authenticated")
		}
	}
}

// TestMoreThanOneKeyRefused: a request with two API keys (two header
// lines, the header and the query, the query parameter twice) gets 400,
// even on an anonymous route, and never reaches the upstream: whichever
// key were checked, the other would go upstream unverified beside it.
func TestMoreThanOneKeyRefused(t *testing.T) {
	t.Parallel()
	both := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), "{header: X-Key, query: apikey}"))
	anon := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), "{header: X-Key, query: apikey}"),
		authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))
	for _, gw := range []*authtest.Gateway{both, anon} {
		for _, tt := range []struct {
			name, target string
			header       http.Header
		}{
			{"header twice", "/", hdr("X-Key", appKey, "X-Key", "other-key-0123456789")},
			{"same key twice", "/", hdr("X-Key", appKey, "X-Key", appKey)},
			{"header and query", "/?apikey=other-key-0123456789", hdr("X-Key", appKey)},
			{"query twice", "/?apikey=" + appKey + "&apikey=other", nil},
			{"query twice, escaped name", "/?apikey=" + appKey + "&api%6Bey=other", nil},
		} {
			res := gw.Do(t, tt.target, tt.header)
			if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "more than one API key") {
				t.Errorf("%s: got %d %s, want 400 naming more than one API key", tt.name, res.Status, res.Body)
			}
			if res.Upstream != nil {
				t.Errorf("%s: got a request upstream, want none", tt.name)
			}
		}
	}
}

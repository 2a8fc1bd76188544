package basicauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/basicauth"
	"golang.org/x/crypto/bcrypt"
)

var aliceHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), 10)
	if err != nil {
		panic(err)
	}
	return string(h)
})

func consumers() []config.Consumer {
	return []config.Consumer{{Name: "app", Groups: []string{"ops"}, Credentials: config.Credentials{
		BasicAuth: []config.BasicCredential{{Username: "alice", PasswordHash: config.Secret(aliceHash())}}}}}
}

func basic(user, pass string) http.Header {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	shared := pipeline.NewShared()
	plain := authtest.Start(t, authtest.Options{Consumers: consumers(), Shared: shared},
		authtest.Configure(t, basicauth.Registration(), ""))
	hide := authtest.Start(t, authtest.Options{Consumers: consumers(), Route: "hide"},
		authtest.Configure(t, basicauth.Registration(), "{hide_credentials: true, cache_ttl: 0s}"))
	tests := []struct {
		name       string
		gw         *authtest.Gateway
		header     http.Header
		wantStatus int
		wantDetail string
		wantAuth   bool // Authorization forwarded upstream
	}{
		{"missing", plain, nil, 401, "no basic credentials found in request", false},
		{"bearer is not basic", plain, http.Header{"Authorization": {"Bearer abc"}}, 401, "no basic credentials found in request", false},
		{"wrong password", plain, basic("alice", "nope"), 401, "invalid username or password", false},
		{"unknown user", plain, basic("bob", "alice-pw"), 401, "invalid username or password", false},
		{"malformed", plain, http.Header{"Authorization": {"Basic !!"}}, 401, "invalid username or password", false},
		{"right", plain, basic("alice", "alice-pw"), 200, "", true},
		{"right again, from the cache", plain, basic("alice", "alice-pw"), 200, "", true},
		{"forged identity", plain, http.Header{"Authorization": basic("alice", "alice-pw")["Authorization"], "X-Consumer-Id": {"root"}}, 200, "", true},
		{"hide", hide, basic("alice", "alice-pw"), 200, "", false},
		{"hide, wrong", hide, basic("alice", "x"), 401, "invalid username or password", false},
	}
	for _, tt := range tests {
		res := tt.gw.Do(t, "/", tt.header)
		if res.Status != tt.wantStatus {
			t.Errorf("%s: got status %d, want %d (%s)", tt.name, res.Status, tt.wantStatus, res.Body)
			continue
		}
		if tt.wantStatus != 200 {
			if res.Upstream != nil {
				t.Errorf("%s: got a request upstream, want none", tt.name)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != basicauth.Challenge {
				t.Errorf("%s: got WWW-Authenticate %q, want %q", tt.name, got, basicauth.Challenge)
			}
			if !strings.Contains(res.Body, `"detail":"`+tt.wantDetail+`"`) {
				t.Errorf("%s: got body %s, want detail %q", tt.name, res.Body, tt.wantDetail)
			}
			continue
		}
		up := res.Upstream
		if got := up.Header.Values("X-Consumer-Id"); len(got) != 1 || got[0] != "app" {
			t.Errorf("%s: got X-Consumer-ID %q upstream, want app", tt.name, got)
		}
		if got := up.Header.Get("Authorization") != ""; got != tt.wantAuth {
			t.Errorf("%s: got Authorization upstream %v, want %v", tt.name, got, tt.wantAuth)
		}
	}
	// The cache lives in Shared under the route's name: a rebuilt chain
	// (a reload) finds the same, warm cache.
	key := basicauth.CacheKey(pipeline.ScopeRoute, "test")
	c, ok := pipeline.Lookup(shared, key)
	if !ok || c.Len() != 1 {
		t.Fatalf("got %v, want a cache with one entry in Shared", c)
	}
	authtest.Start(t, authtest.Options{Consumers: consumers(), Shared: shared},
		authtest.Configure(t, basicauth.Registration(), ""))
	if c2, _ := pipeline.Lookup(shared, key); c2 != c {
		t.Error("got a new cache after a rebuild, want the same one")
	}
}

func TestPasswordChangeBeatsTheCache(t *testing.T) {
	t.Parallel()
	shared := pipeline.NewShared()
	gw := authtest.Start(t, authtest.Options{Consumers: consumers(), Shared: shared},
		authtest.Configure(t, basicauth.Registration(), ""))
	if res := gw.Do(t, "/", basic("alice", "alice-pw")); res.Status != 200 {
		t.Fatalf("got %d, want 200", res.Status)
	}
	newHash, err := bcrypt.GenerateFromPassword([]byte("new-pw"), 10)
	if err != nil {
		t.Fatal(err)
	}
	cs := consumers()
	cs[0].Credentials.BasicAuth[0].PasswordHash = config.Secret(newHash)
	reloaded := authtest.Start(t, authtest.Options{Consumers: cs, Shared: shared},
		authtest.Configure(t, basicauth.Registration(), ""))
	if res := reloaded.Do(t, "/", basic("alice", "alice-pw")); res.Status != 401 {
		t.Errorf("got %d for the old password after a change, want 401", res.Status)
	}
	if res := reloaded.Do(t, "/", basic("alice", "new-pw")); res.Status != 200 {
		t.Errorf("got %d for the new password, want 200", res.Status)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	if _, err := authtest.TryConfigure(basicauth.Registration(), "{cache_ttl: 2h}"); err == nil ||
		!strings.Contains(err.Error(), "routes[0].plugins.basic_auth.cache_ttl: must be at most 1h") {
		t.Errorf("got %v, want a cache_ttl error", err)
	}
	if _, err := authtest.TryConfigure(basicauth.Registration(), "{cache_ttl: 5s, hide_credentials: true}"); err != nil {
		t.Errorf("got %s, want no error", err.Error())
	}
}

func benchChain(b *testing.B, ttl string) {
	reg, err := consumer.New(consumers())
	if err != nil {
		b.Fatal(err)
	}
	c, err := authtest.TryConfigure(basicauth.Registration(), "{cache_ttl: "+ttl+"}")
	if err != nil {
		b.Fatal(err)
	}
	h, err := pipeline.Chain([]pipeline.Configured{c}, pipeline.BuildEnv{Consumers: reg, Shared: pipeline.NewShared(), Route: "r"},
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if err != nil {
		b.Fatal(err)
	}
	ex := &pipeline.Exchange{}
	r := httptest.NewRequest("GET", "/", nil).WithContext(pipeline.NewContext(b.Context(), ex))
	r.SetBasicAuth("alice", "alice-pw")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		*ex = pipeline.Exchange{}
		h.ServeHTTP(w, r)
		if ex.Auth.Passed != 1 {
			b.Fatal("not authenticated")
		}
	}
}

func BenchmarkBasicAuthCached(b *testing.B)   { benchChain(b, "60s") }
func BenchmarkBasicAuthUncached(b *testing.B) { benchChain(b, "0s") }

package jwt

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// jwksGateway builds a gateway whose remote key sets use clk.
func jwksGateway(t *testing.T, specSrc string, clk *fakeClock) *gateway {
	t.Helper()
	g := newGateway(t, decodeSpec(t, specSrc), &pipeline.BuildEnv{Shared: pipeline.NewShared()}, clk.Now)
	for _, rk := range g.v.remotes {
		rk.now = clk.Now
	}
	return g
}

func TestJWKSRotation(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", "RS256"))
	g := jwksGateway(t, "{algorithms: [RS256, ES256], jwks_url: '"+js.URL+"'}", clk)

	if res := g.do(t, sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "a")); res.status != 200 {
		t.Fatalf("got %d (%s) for kid a, want 200", res.status, res.challenge)
	}
	if got := js.hits.Load(); got != 1 {
		t.Fatalf("got %d fetches after the first token, want 1", got)
	}
	js.set(jwkOf(&k.rsa.PublicKey, "a", "RS256"), jwkOf(&k.p256.PublicKey, "b", ""))
	tokB := sign(t, "ES256", k.p256, claimsAt(clk.Now(), nil), "b")
	if res := g.do(t, tokB); res.status != 401 || !strings.Contains(res.challenge, "unknown signing key") {
		t.Fatalf("got %d %q for kid b within jwks_min_refetch, want 401 unknown signing key", res.status, res.challenge)
	}
	if got := js.hits.Load(); got != 1 {
		t.Fatalf("got %d fetches, want 1: the refetch is throttled", got)
	}
	clk.Advance(time.Minute)
	tokB = sign(t, "ES256", k.p256, claimsAt(clk.Now(), nil), "b")
	if res := g.do(t, tokB); res.status != 200 {
		t.Fatalf("got %d (%s) for kid b after the interval, want 200", res.status, res.challenge)
	}
	if got := js.hits.Load(); got != 2 {
		t.Errorf("got %d fetches, want 2", got)
	}
	// A known kid causes no fetch.
	for range 5 {
		g.do(t, tokB)
	}
	if got := js.hits.Load(); got != 2 {
		t.Errorf("got %d fetches after known kids, want 2", got)
	}
}

func TestJWKSKeepsLastGoodKeys(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"'}", clk)
	tok := sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "a")
	if res := g.do(t, tok); res.status != 200 {
		t.Fatalf("got %d, want 200", res.status)
	}
	js.mu.Lock()
	js.fail = true
	js.mu.Unlock()
	clk.Advance(2 * time.Minute)
	// An unknown kid makes a fetch that fails; the old set stays.
	g.do(t, sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "zzz"))
	if got := js.hits.Load(); got != 2 {
		t.Fatalf("got %d fetches, want 2", got)
	}
	if res := g.do(t, tok); res.status != 200 {
		t.Errorf("got %d with the endpoint failing, want 200 from the cached keys", res.status)
	}
	js.Close()
	clk.Advance(2 * time.Minute)
	g.do(t, sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "yyy"))
	if res := g.do(t, tok); res.status != 200 {
		t.Errorf("got %d with the endpoint gone, want 200 from the cached keys", res.status)
	}
}

func TestJWKSForgedKidsCauseNoFetchStorm(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"', jwks_min_refetch: 30s}", clk)
	forge := func(n int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					kid := fmt.Sprintf("forged-%d-%d", i, rand.Uint64())
					res := g.do(t, sign(t, "RS256", k.rsa2, claimsAt(clk.Now(), nil), kid))
					if res.status != 401 {
						t.Errorf("got %d for a forged kid, want 401", res.status)
					}
				}
			})
		}
		wg.Wait()
	}
	forge(1000)
	if got := js.hits.Load(); got != 1 {
		t.Errorf("got %d fetches for 1000 forged kids, want 1", got)
	}
	clk.Advance(30 * time.Second)
	forge(1000)
	if got := js.hits.Load(); got != 2 {
		t.Errorf("got %d fetches after one more interval, want 2", got)
	}
	if g.up.hits.Load() != 0 {
		t.Errorf("got %d upstream hits, want 0", g.up.hits.Load())
	}
}

// manualTimer hands Run's waits to the test.
type manualTimer struct {
	waits chan time.Duration
	fire  chan time.Time
}

func (m *manualTimer) after(d time.Duration) <-chan time.Time {
	m.waits <- d
	return m.fire
}

func TestJWKSRunRefreshesAndHonoursCacheControl(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	js.cacheControl = "public, max-age=600"
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"', jwks_refresh: 2h}", clk)
	rk := g.v.remotes[0]
	mt := &manualTimer{waits: make(chan time.Duration), fire: make(chan time.Time)}
	rk.after = mt.after
	if rk.Ready() {
		t.Fatal("got ready before Run, want not ready")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rk.Run(ctx); close(done) }()

	steps := []struct {
		name     string
		set      func()
		wantWait time.Duration
	}{
		{"max-age honoured", func() {}, 10 * time.Minute},
		{"max-age clamped up", func() { js.mu.Lock(); js.cacheControl = "max-age=10"; js.mu.Unlock() }, 5 * time.Minute},
		{"max-age clamped down", func() { js.mu.Lock(); js.cacheControl = "max-age=999999"; js.mu.Unlock() }, 24 * time.Hour},
		{"no max-age", func() { js.mu.Lock(); js.cacheControl = ""; js.mu.Unlock() }, 2 * time.Hour},
		{"failure retried after min_refetch", func() { js.mu.Lock(); js.fail = true; js.mu.Unlock() }, time.Minute},
	}
	for i, st := range steps {
		if i > 0 {
			st.set()
			mt.fire <- time.Time{}
		}
		if got := <-mt.waits; got != st.wantWait {
			t.Errorf("%s: got wait %s, want %s", st.name, got, st.wantWait)
		}
		if got := js.hits.Load(); got != int64(i+1) {
			t.Errorf("%s: got %d fetches, want %d", st.name, got, i+1)
		}
		if !rk.Ready() {
			t.Errorf("%s: got not ready after a good fetch, want ready", st.name)
		}
	}
	cancel()
	<-done
}

func TestJWKSUnavailableAnswers503UntilFirstFetch(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	js.fail = true
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"'}", clk)
	tok := sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "a")
	if res := g.do(t, tok); res.status != 503 || res.retryAfter != retryAfterKeys {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After %s", res.status, res.retryAfter, retryAfterKeys)
	}
	js.mu.Lock()
	js.fail = false
	js.mu.Unlock()
	clk.Advance(time.Minute)
	if res := g.do(t, tok); res.status != 200 {
		t.Errorf("got %d after the endpoint recovered, want 200", res.status)
	}
}

func TestJWKSReadyAfterTimeoutWhenEndpointFails(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	js.fail = true
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"', ready_timeout: 10s}", clk)
	rk := g.v.remotes[0]
	mt := &manualTimer{waits: make(chan time.Duration), fire: make(chan time.Time)}
	rk.after = mt.after
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rk.Run(ctx); close(done) }()
	<-mt.waits
	if rk.Ready() {
		t.Error("got ready after a failed first fetch, want not ready")
	}
	clk.Advance(10 * time.Second)
	if !rk.Ready() {
		t.Error("got not ready after ready_timeout, want ready")
	}
	cancel()
	<-done
}

func TestJWKHonoursAlgAndUse(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	enc := jwkOf(&k.rsa2.PublicKey, "enc", "")
	enc["use"] = "enc"
	js := newJWKSServer(t,
		jwkOf(&k.rsa.PublicKey, "rs384-only", "RS384"),
		enc,
		jwkOf(&k.p384.PublicKey, "p384", ""),
		jwkOf(&k.p521.PublicKey, "p521", "ES512"),
		jwkOf(k.ed.Public(), "ed", ""),
		map[string]string{"kty": "oct", "kid": "oct", "k": b64u(k.hmac)},
	)
	g := jwksGateway(t, "{algorithms: [RS256, RS384, ES384, ES512, EdDSA, HS256], jwks_url: '"+js.URL+"'}", clk)
	now := clk.Now()
	tests := []struct {
		name string
		alg  string
		key  any
		kid  string
		want int
	}{
		{"alg matches", "RS384", k.rsa, "rs384-only", 200},
		{"alg differs from the JWK's", "RS256", k.rsa, "rs384-only", 401},
		{"encryption key", "RS256", k.rsa2, "enc", 401},
		{"P-384", "ES384", k.p384, "p384", 200},
		{"P-521", "ES512", k.p521, "p521", 200},
		{"Ed25519", "EdDSA", k.ed, "ed", 200},
		{"symmetric JWK never used", "HS256", k.hmac, "oct", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := g.do(t, sign(t, tt.alg, tt.key, claimsAt(now, nil), tt.kid)); res.status != tt.want {
				t.Errorf("got %d (%s), want %d", res.status, res.challenge, tt.want)
			}
		})
	}
}

func TestJWKSFetchLimits(t *testing.T) {
	k := tk(t)
	good := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	redirect := httptest.NewServer(http.RedirectHandler(good.URL+"/keys", http.StatusFound))
	t.Cleanup(redirect.Close)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	t.Cleanup(huge.Close)
	for _, tc := range []struct{ name, url string }{
		{"redirect to another host", redirect.URL},
		{"body over 1 MiB", huge.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+tc.url+"'}", clk)
			res := g.do(t, sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "a"))
			if res.status != 503 || res.retryAfter == "" {
				t.Errorf("got %d (Retry-After %q), want 503 with Retry-After: no key set was fetched", res.status, res.retryAfter)
			}
		})
	}
	if got := good.hits.Load(); got != 0 {
		t.Errorf("got %d fetches at the redirect target, want 0", got)
	}
}

// oidcServer serves a discovery document naming issuer and its own key set.
func oidcServer(t *testing.T, issuer func(self string) string, keys ...map[string]string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer(srv.URL), "jwks_uri": srv.URL + "/keys"})
		case "/keys":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOIDCDiscovery(t *testing.T) {
	k := tk(t)
	srv := oidcServer(t, func(self string) string { return self }, jwkOf(&k.p256.PublicKey, "k1", "ES256"))
	clk := newFakeClock()
	g := jwksGateway(t, "{algorithms: [ES256], issuer_discovery: '"+srv.URL+"'}", clk)
	now := clk.Now()
	if res := g.do(t, sign(t, "ES256", k.p256, claimsAt(now, jwtlib.MapClaims{"iss": srv.URL}), "k1")); res.status != 200 {
		t.Fatalf("got %d (%s), want 200", res.status, res.challenge)
	}
	res := g.do(t, sign(t, "ES256", k.p256, claimsAt(now, jwtlib.MapClaims{"iss": "https://other.test"}), "k1"))
	if res.status != 401 || !strings.Contains(res.challenge, "wrong issuer") {
		t.Errorf("got %d %q for another iss, want 401 wrong issuer", res.status, res.challenge)
	}

	liar := oidcServer(t, func(string) string { return "https://evil.test" }, jwkOf(&k.p256.PublicKey, "k1", "ES256"))
	g2 := jwksGateway(t, "{algorithms: [ES256], issuer_discovery: '"+liar.URL+"'}", clk)
	res = g2.do(t, sign(t, "ES256", k.p256, claimsAt(now, jwtlib.MapClaims{"iss": liar.URL}), "k1"))
	if res.status != 503 {
		t.Errorf("got %d %q with a discovery document naming another issuer, want 503: no key set", res.status, res.challenge)
	}
}

func TestSharedKeySetSurvivesRebuild(t *testing.T) {
	k := tk(t)
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	shared := pipeline.NewShared()
	spec := decodeSpec(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"'}")
	v1, err := newVerifier(spec, &pipeline.BuildEnv{Shared: shared}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newVerifier(spec, &pipeline.BuildEnv{Shared: shared}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if v1.remotes[0] != v2.remotes[0] {
		t.Error("got two key sets for one URL, want one shared")
	}
	if got := len(shared.TakePending()); got != 1 {
		t.Errorf("got %d pending runners, want 1", got)
	}
	if js.hits.Load() != 0 {
		t.Errorf("got %d fetches during build, want 0", js.hits.Load())
	}
}

func TestRefreshInterval(t *testing.T) {
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"", time.Hour},
		{"max-age=600", 10 * time.Minute},
		{"public, MAX-AGE=60", 5 * time.Minute},
		{"max-age=9999999999999", 24 * time.Hour},
		{"max-age=abc", time.Hour},
		{"no-cache", time.Hour},
	}
	for _, tt := range tests {
		if got := refreshInterval(tt.cc, time.Hour); got != tt.want {
			t.Errorf("refreshInterval(%q): got %s, want %s", tt.cc, got, tt.want)
		}
	}
}

func TestJWKSNoFetchStormUnderConcurrentMisses(t *testing.T) {
	k := tk(t)
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", ""))
	clk := newFakeClock()
	g := jwksGateway(t, "{algorithms: [RS256], jwks_url: '"+js.URL+"'}", clk)
	// Before any fetch, many concurrent requests for a good kid share one fetch.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if res := g.do(t, sign(t, "RS256", k.rsa, claimsAt(clk.Now(), nil), "a")); res.status != 200 {
				t.Errorf("got %d, want 200", res.status)
			}
		})
	}
	wg.Wait()
	if got := js.hits.Load(); got != 1 {
		t.Errorf("got %d fetches, want 1", got)
	}
}

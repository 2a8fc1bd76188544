package cache

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/problem"
)

// Each test here is an attack on the cache followed by an innocent
// client's request: the innocent client must get an answer that nothing
// of the attacker's request shaped, either from the origin or from the
// cache. The attacks are those of "Practical Web Cache Poisoning" and
// "Web Cache Entanglement" (Kettle, 2018 and 2020), "Your Cache Has
// Fallen: Cache-Poisoned Denial-of-Service" (Nguyen et al., CCS 2019) and
// "Web Cache Deception" (Gil, 2017).

// reflect answers with what the request carried that an application could
// depend on, under the caching header fields kv.
func reflect(kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		who := r.Header.Get("X-Consumer-Name")
		_, _ = io.WriteString(w, "query="+r.URL.RawQuery+" body="+string(body)+" cookie="+r.Header.Get("Cookie")+
			" auth="+r.Header.Get("Authorization")+" key="+r.Header.Get("X-Api-Key")+" consumer="+who)
	}
}

// clean is what reflect answers to an innocent GET of ?q.
func clean(q, consumer string) string {
	return "query=" + q + " body= cookie= auth= key= consumer=" + consumer
}

// hideLength hides a body's length from the client, so that it is sent
// chunked.
type hideLength struct{ io.Reader }

// TestFatGETDoesNotPoison: a GET or HEAD with a body bypasses the cache.
// The upstream still gets it (and may answer by it), so its answer is
// neither served from nor stored in the cache, however cacheable it says
// it is.
func TestFatGETDoesNotPoison(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   func() io.Reader
	}{
		{"GET with Content-Length", http.MethodGet, func() io.Reader { return strings.NewReader("evil") }},
		{"GET chunked", http.MethodGet, func() io.Reader { return hideLength{strings.NewReader("evil")} }},
		{"HEAD with Content-Length", http.MethodHead, func() io.Reader { return strings.NewReader("evil") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, reflect("Cache-Control", "public, max-age=60"))
			g := startGateway(t, o, "default_ttl: 1m", gwOptions{})
			attack := g.send(t, tt.method, "/p?a=1", tt.body())
			wantStatus(t, attack, "fwd=bypass")
			if tt.method == http.MethodGet && !strings.Contains(attack.body, "body=evil") {
				t.Fatalf("got %q for the attacker, want the upstream to have read the body", attack.body)
			}
			if r := g.get(t, "/p?a=1"); r.body != clean("a=1", "") {
				t.Fatalf("got %q for an innocent client, want %q", r.body, clean("a=1", ""))
			}
			wantHits(t, o, 2)
			// The innocent answer is stored; a request with a body is still
			// not answered from it.
			g.get(t, "/p?a=1")
			wantHits(t, o, 2)
			again := g.send(t, tt.method, "/p?a=1", tt.body())
			wantStatus(t, again, "fwd=bypass")
			wantHits(t, o, 3)
		})
	}
}

// TestUnkeyedQueryParametersAreNotForwarded: a parameter query.include or
// query.exclude leaves out of the key never reaches the upstream from the
// cache path, however it is spelled, so a stored answer cannot depend on
// it (unkeyed parameter poisoning, parameter cloaking).
func TestUnkeyedQueryParametersAreNotForwarded(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		attack   string
		innocent string
		want     string // the query the upstream sees for the innocent request
	}{
		{"excluded", "query: {exclude: [utm_content]}", "/q?a=1&utm_content=%3Cscript%3E", "/q?a=1", "a=1"},
		{"excluded, escaped name", "query: {exclude: [utm_content]}", "/q?a=1&utm_c%6Fntent=evil", "/q?a=1", "a=1"},
		{"excluded, cloaked parameter", "query: {exclude: [utm_content]}", "/q?a=1&utm_content=x;callback=evil", "/q?a=1", "a=1"},
		{"excluded, repeated", "query: {exclude: [utm_content]}", "/q?utm_content=1&a=1&utm_content=evil", "/q?a=1", "a=1"},
		{"not included", "query: {include: [a]}", "/q?a=1&callback=evil", "/q?a=1", "a=1"},
		{"not included, innocent has its own", "query: {include: [a]}", "/q?callback=evil&a=1", "/q?a=1&page=2", "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, reflect("Cache-Control", "max-age=60"))
			g := startGateway(t, o, tt.settings, gwOptions{})
			attack := g.get(t, tt.attack)
			if got := o.last().URL.RawQuery; got != tt.want {
				t.Errorf("upstream got query %q for the attacker, want %q", got, tt.want)
			}
			if r := g.get(t, tt.innocent); r.body != clean(tt.want, "") || r.body != attack.body {
				t.Fatalf("got %q for an innocent client, want %q", r.body, clean(tt.want, ""))
			}
			wantHits(t, o, 1)
		})
	}
}

// TestUnkeyedQueryParametersStayOnBypass: requests the cache does not
// answer (writes, range requests) reach the upstream as sent.
func TestUnkeyedQueryParametersStayOnBypass(t *testing.T) {
	o := newOrigin(t, reflect())
	g := startGateway(t, o, "query: {exclude: [utm]}", gwOptions{})
	g.do(t, http.MethodPost, "/q?a=1&utm=x")
	if got := o.last().URL.RawQuery; got != "a=1&utm=x" {
		t.Errorf("upstream got query %q for a POST, want a=1&utm=x", got)
	}
	g.get(t, "/q?a=1&utm=x", "Range", "bytes=0-1")
	if got := o.last().URL.RawQuery; got != "a=1&utm=x" {
		t.Errorf("upstream got query %q for a range request, want a=1&utm=x", got)
	}
}

// TestDefaultTTLNeverForCredentials: with default_ttl, an answer without
// freshness information to a request that carried a credential or a
// cookie is not stored (Web Cache Deception: the origin did not say the
// answer may be shared), so the next, innocent client gets its own.
func TestDefaultTTLNeverForCredentials(t *testing.T) {
	tests := []struct {
		name    string
		keyAuth string // key_auth settings when the route has key_auth
		path    string
		kv      []string
	}{
		{"Authorization", "", "/me", []string{"Authorization", "Bearer alice-token"}},
		{"Cookie", "", "/me", []string{"Cookie", "session=alice"}},
		{"Proxy-Authorization", "", "/me", []string{"Proxy-Authorization", "Basic YWxpY2U6eA=="}},
		{"API key", "{}", "/me", []string{"X-API-Key", "alice-key"}},
		{"API key, hidden from the upstream", "{hide_credentials: true}", "/me", []string{"X-API-Key", "alice-key"}},
		{"API key in the query, hidden", "{query: apikey, hide_credentials: true}", "/me?apikey=alice-key", nil},
		{"refused API key, admitted as anonymous", "{}", "/me", []string{"X-API-Key", "stolen-or-wrong"}},
		{"Cookie on a key_auth route", "{}", "/me", []string{"Cookie", "session=alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, reflect())
			opts := gwOptions{}
			innocent := clean("", "")
			if tt.keyAuth != "" {
				opts = gwOptions{keyAuth: true, keyAuthIn: tt.keyAuth, anonymous: "guest", consumers: testConsumers}
				innocent = clean("", "guest")
			}
			g := startGateway(t, o, "default_ttl: 1m", opts)
			attack := g.get(t, tt.path, tt.kv...)
			if attack.status != 200 {
				t.Fatalf("got %d for the credentialed request, want 200", attack.status)
			}
			if strings.Contains(attack.cacheStatus(), "stored") {
				t.Errorf("got Cache-Status %q for the credentialed request, want it not stored", attack.cacheStatus())
			}
			if r := g.get(t, "/me"); r.body != innocent {
				t.Fatalf("got %q for an innocent client, want %q", r.body, innocent)
			}
			wantHits(t, o, 2)
			// default_ttl still serves anonymous clients.
			if r := g.get(t, "/me"); r.body != innocent {
				t.Fatalf("got %q for a second innocent client, want %q", r.body, innocent)
			}
			wantHits(t, o, 2)
		})
	}
}

// TestDefaultTTLNeverForSetCookie: an answer that sets a cookie is never
// stored, so no client gets another's session.
func TestDefaultTTLNeverForSetCookie(t *testing.T) {
	o := newOrigin(t, answer(200, "welcome", "Set-Cookie", "session=attacker; Path=/"))
	g := startGateway(t, o, "default_ttl: 1m", gwOptions{})
	g.get(t, "/login")
	o.set(answer(200, "welcome"))
	r := g.get(t, "/login")
	if got := r.header.Get("Set-Cookie"); got != "" {
		t.Fatalf("got Set-Cookie %q for an innocent client, want none", got)
	}
	wantHits(t, o, 2)
}

// TestDefaultTTLNeverForErrors: an error an attacker provoked (a header
// too large, a bad character, a method the origin refuses) is stored only
// when the origin gave it explicit freshness; default_ttl never makes one
// reusable (CPDoS).
func TestDefaultTTLNeverForErrors(t *testing.T) {
	for _, status := range []int{400, 403, 404, 405, 410, 413, 414, 431, 500, 501, 502, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Oversized") != "" {
					w.WriteHeader(status)
					_, _ = io.WriteString(w, "error")
					return
				}
				_, _ = io.WriteString(w, "ok")
			})
			g := startGateway(t, o, "default_ttl: 1m", gwOptions{})
			if r := g.get(t, "/e", "X-Oversized", strings.Repeat("x", 1000)); r.status != status {
				t.Fatalf("got %d for the attacker, want %d", r.status, status)
			}
			if r := g.get(t, "/e"); r.status != 200 || r.body != "ok" {
				t.Fatalf("got %d %q for an innocent client, want 200 ok", r.status, r.body)
			}
			wantHits(t, o, 2)
		})
	}
}

// TestOverrideHeadersDoNotPoison: a request with a method or URL override
// header bypasses the cache, so an error (or another resource) it made
// the origin answer is never served to others, even with explicit
// freshness (CPDoS "HTTP Method Override"). The edge may remove these
// headers before the cache sees them; the innocent client's answer is
// clean either way.
func TestOverrideHeadersDoNotPoison(t *testing.T) {
	overrides := []struct{ name, value string }{
		{"X-HTTP-Method-Override", "DELETE"}, {"X-HTTP-Method", "POST"}, {"X-Method-Override", "PUT"},
		{"X-Original-URL", "/admin"}, {"X-Rewrite-URL", "/admin"}, {"X-Original-Method", "DELETE"},
		{"X-Forwarded-Method", "DELETE"},
	}
	for _, ov := range overrides {
		t.Run(ov.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=60")
				if r.Header.Get(ov.name) != "" {
					w.WriteHeader(http.StatusMethodNotAllowed)
					_, _ = io.WriteString(w, "refused")
					return
				}
				_, _ = io.WriteString(w, "ok")
			})
			g := startGateway(t, o, "default_ttl: 1m", gwOptions{})
			g.get(t, "/o", ov.name, ov.value)
			r := g.get(t, "/o")
			if r.status != 200 || r.body != "ok" {
				t.Fatalf("got %d %q for an innocent client, want 200 ok", r.status, r.body)
			}
			// Nor is a stored answer served to a request the origin would
			// have treated as another method or URL.
			if r := g.get(t, "/o", ov.name, ov.value); strings.Contains(r.cacheStatus(), "hit") {
				t.Errorf("got Cache-Status %q for a request with %s, want it not answered from the cache", r.cacheStatus(), ov.name)
			}
		})
	}
}

// TestGatewayRequestErrorsAreNotStored: a 400, 413, 414 or 431 the gateway
// makes itself describes one client's request, never the resource: it is
// not stored, whatever header fields were set before it was written.
func TestGatewayRequestErrorsAreNotStored(t *testing.T) {
	for _, status := range []int{400, 413, 414, 431} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			calls := 0
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				w.Header().Set("Cache-Control", "public, max-age=60")
				w.Header().Set("Surrogate-Control", "max-age=60")
				problem.Write(w, r, status, "", "refused")
			})
			c := authtest.Configure(t, Registration(), "default_ttl: 1m")
			shared := pipeline.NewShared()
			t.Cleanup(func() { shared.Begin(); shared.Retire() })
			mw, err := c.Reg.Build(c.Spec, &pipeline.BuildEnv{Route: "r", Shared: shared})
			if err != nil {
				t.Fatal(err)
			}
			h := mw(next)
			for range 2 {
				req := httptest.NewRequest(http.MethodGet, "http://example.test/g", nil)
				req = req.WithContext(pipeline.NewContext(context.Background(), &pipeline.Exchange{Start: time.Now(), Route: "r"}))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != status {
					t.Fatalf("got %d, want %d", rec.Code, status)
				}
			}
			if calls != 2 {
				t.Errorf("got %d calls past the cache, want 2 (the first answer not stored)", calls)
			}
		})
	}
}

// TestRevalidationThatForbidsStoringRemovesTheEntry: a 304 whose fields
// say the response may no longer be stored serves the refreshed response
// once and removes it, rather than keeping it under a lifetime the gateway
// assigns.
func TestRevalidationThatForbidsStoringRemovesTheEntry(t *testing.T) {
	o := newOrigin(t, answer(200, "v1", "Cache-Control", "max-age=1", "Age", "5", "ETag", `"v1"`))
	g := startGateway(t, o, "default_ttl: 1m", gwOptions{})
	g.get(t, "/r")
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "v1")
	})
	if r := g.get(t, "/r"); r.body != "v1" {
		t.Fatalf("got %q, want the revalidated v1", r.body)
	}
	wantHits(t, o, 2)
	if r := g.get(t, "/r"); r.body != "v1" || strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("got %q (%s), want v1 from the origin", r.body, r.cacheStatus())
	}
	wantHits(t, o, 3)
}

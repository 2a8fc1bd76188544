package forwardauth

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/acl"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/telemetry/telemetrytest"
)

const identity = "response_headers: [X-User-ID, X-User-Roles]\n"

// TestAdmitCopiesIdentityHeaders: a 2xx admits; the listed headers of the
// answer reach the upstream and nothing else of it does; client-sent
// copies of those headers never do, whether the answer sets them or not.
func TestAdmitCopiesIdentityHeaders(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, identity, authtest.Options{})

	res := g.Do(t, "/orders?id=7", bearer("good", "X-User-ID", "forged", "X-User-Roles", "root"))
	if res.Status != http.StatusOK || res.Upstream == nil {
		t.Fatalf("got %d (%s), want 200 from the upstream", res.Status, res.Body)
	}
	up := res.Upstream.Header
	for k, want := range map[string]string{"X-User-Id": "user-1", "X-User-Roles": "admin", "X-Not-Copied": "",
		"X-Consumer-Id": "", "Authorization": "Bearer good"} {
		if got := strings.Join(up.Values(k), "|"); got != want {
			t.Errorf("upstream %s: got %q, want %q", k, got, want)
		}
	}

	res = g.Do(t, "/", bearer("no-roles", "X-User-Roles", "root"))
	if res.Status != http.StatusOK {
		t.Fatalf("no-roles: got %d, want 200", res.Status)
	}
	if got := res.Upstream.Header.Values("X-User-Roles"); len(got) != 0 {
		t.Errorf("no-roles: forged X-User-Roles reached the upstream: %q", got)
	}
	if got := res.Upstream.Header.Get("X-User-ID"); got != "user-2" {
		t.Errorf("no-roles: got X-User-ID %q, want user-2", got)
	}
}

// TestIdentityHeadersStrippedOnEveryRoute: response_headers are declared
// as identity headers, so the edge strips client copies everywhere.
func TestIdentityHeadersStrippedOnEveryRoute(t *testing.T) {
	t.Parallel()
	reg := Registration()
	c := authtest.Configure(t, reg, "url: http://auth.internal/check\nresponse_headers: [x-user-roles, X-Tenant]")
	got := reg.IdentityHeaders(c.Spec)
	if strings.Join(got, ",") != "x-user-roles,X-Tenant" {
		t.Errorf("got identity headers %q, want the response_headers", got)
	}
	a := newAuthService(t)
	g := gateway(t, a, "response_headers: [X-Tenant]", authtest.Options{})
	found := false
	for _, h := range g.Identity {
		found = found || h == "X-Tenant"
	}
	if !found {
		t.Errorf("got stripped headers %q, want X-Tenant among them", g.Identity)
	}
}

// TestWhatTheServiceReceives: the call carries the original method, the
// listed request headers only, and the gateway's view of the request in
// X-Forwarded-*: the normalized path, and the client address the edge
// resolved, not the client's own X-Forwarded-For.
func TestWhatTheServiceReceives(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, identity, authtest.Options{})
	req := g.NewRequest(t, http.MethodDelete, "/api/./v1/../orders/7?x=1&y=%2F", nil,
		bearer("good", "Cookie", "sid=abc", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example",
			"X-Forwarded-Uri", "/admin", "X-Other", "not sent"))
	req.Host = "shop.example"
	if res := g.Send(t, req); res.Status != http.StatusOK {
		t.Fatalf("got %d (%s), want 200", res.Status, res.Body)
	}
	call := a.last(t)
	if call.Method != http.MethodDelete || call.URI != "/check" {
		t.Errorf("got %s %s, want DELETE /check", call.Method, call.URI)
	}
	want := map[string]string{
		"Authorization":      "Bearer good",
		"Cookie":             "sid=abc",
		"X-Forwarded-Method": "DELETE",
		"X-Forwarded-Proto":  "http",
		"X-Forwarded-Host":   "shop.example",
		"X-Forwarded-Uri":    "/api/orders/7?x=1&y=%2F",
		"X-Forwarded-For":    "127.0.0.1",
		"X-Other":            "",
	}
	for k, w := range want {
		if got := strings.Join(call.Header.Values(k), "|"); got != w {
			t.Errorf("service got %s %q, want %q", k, got, w)
		}
	}
}

// TestFixedMethod: method sends every call with one method.
func TestFixedMethod(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, "method: GET", authtest.Options{})
	if res := g.Do(t, "/", bearer("good")); res.Status != http.StatusOK {
		t.Fatalf("got %d, want 200", res.Status)
	}
	if res := g.Send(t, g.NewRequest(t, http.MethodPost, "/", strings.NewReader("x"), bearer("good"))); res.Status != http.StatusOK {
		t.Fatalf("got %d, want 200", res.Status)
	}
	if c := a.last(t); c.Method != http.MethodGet || c.Header.Get("X-Forwarded-Method") != http.MethodPost || c.Body != "" {
		t.Errorf("got %s with X-Forwarded-Method %q and body %q, want GET, POST, none", c.Method, c.Header.Get("X-Forwarded-Method"), c.Body)
	}
}

// TestRefusalsPassedOn: by default the service's own refusal goes to the
// client: status, body and client_headers only, a 302 to the login page
// included; nothing reaches the upstream.
func TestRefusalsPassedOn(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, identity, authtest.Options{})
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantBody   string
		wantHdrs   map[string]string
	}{
		{"401 with challenge", "bad", 401, `{"error":"invalid_token"}`, map[string]string{
			"WWW-Authenticate": `Bearer realm="auth", error="invalid_token"`, "Content-Type": "application/json"}},
		{"403 with body", "forbidden", 403, "forbidden by policy", map[string]string{
			"Content-Type": "text/plain", "X-Internal-Reason": ""}},
		{"302 to the login page", "", 302, `<a href="https://login.example/">log in</a>`, map[string]string{
			"Location": "https://login.example/?rd=/app/page?q=1", "Set-Cookie": "login_state=abc; Path=/; HttpOnly"}},
	}
	for _, tt := range tests {
		target := "/"
		if tt.token == "" {
			target = "/app/page?q=1"
		}
		res := g.Do(t, target, bearer(tt.token))
		if res.Status != tt.wantStatus || res.Body != tt.wantBody {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, res.Status, res.Body, tt.wantStatus, tt.wantBody)
		}
		for k, want := range tt.wantHdrs {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s: got %s %q, want %q", tt.name, k, got, want)
			}
		}
		if res.Upstream != nil {
			t.Errorf("%s: the request reached the upstream", tt.name)
		}
	}
}

// TestProblemJSON: problem_json answers refusals with the gateway's
// problem JSON and the service's status (a redirect becomes 401).
func TestProblemJSON(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, "problem_json: true", authtest.Options{})
	for _, tt := range []struct {
		token string
		want  int
	}{{"bad", 401}, {"forbidden", 403}, {"", 401}} {
		res := g.Do(t, "/", bearer(tt.token))
		if res.Status != tt.want || res.Header.Get("Content-Type") != problem.ContentType ||
			!strings.Contains(res.Body, `"detail":"the authorization service refused the request"`) {
			t.Errorf("%q: got %d %s %s, want %d problem JSON", tt.token, res.Status, res.Header.Get("Content-Type"), res.Body, tt.want)
		}
		if tt.token == "bad" && res.Header.Get("WWW-Authenticate") != `Bearer realm="auth", error="invalid_token"` {
			t.Errorf("bad: got WWW-Authenticate %q, want the service's", res.Header.Get("WWW-Authenticate"))
		}
		if res.Header.Get("Location") != "" || res.Header.Get("Set-Cookie") != "" {
			t.Errorf("%q: got the service's headers passed on, want none", tt.token)
		}
	}
}

// TestOversizedRefusalIs502: a refusal whose body is over 64 KiB is not
// passed on, whatever on_error says.
func TestOversizedRefusalIs502(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	for _, onError := range []string{FailClosed, FailOpen} {
		g := gateway(t, a, "on_error: "+onError, authtest.Options{})
		res := g.Do(t, "/", bearer("huge"))
		if res.Status != http.StatusBadGateway || res.Header.Get("Content-Type") != problem.ContentType || res.Upstream != nil {
			t.Errorf("%s: got %d %s (upstream reached: %v), want a 502 problem", onError, res.Status, res.Header.Get("Content-Type"), res.Upstream != nil)
		}
	}
}

// TestOutage: a timeout, a refused connection and a 5xx are outages:
// fail_closed answers 503 with Retry-After; fail_open lets the request
// through unauthenticated (no identity headers, the anonymous consumer
// when the route has one).
func TestOutage(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	down := closedURL(t)
	tests := []struct {
		name, url, token string
	}{
		{"timeout", "", "slow"},
		{"connection refused", down, "good"},
		{"500", "", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			settings := identity + "timeout: 200ms\n"
			if tt.url != "" {
				settings += "url: " + tt.url + "\n"
			}
			closed := gateway(t, a, settings, authtest.Options{})
			res := closed.Do(t, "/", bearer(tt.token, "X-User-ID", "forged"))
			if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "5" ||
				res.Header.Get("Content-Type") != problem.ContentType || res.Upstream != nil {
				t.Errorf("fail_closed: got %d Retry-After %q %s, want a 503 problem with Retry-After: 5",
					res.Status, res.Header.Get("Retry-After"), res.Body)
			}

			open := gateway(t, a, settings+"on_error: fail_open\n", authtest.Options{})
			res = open.Do(t, "/", bearer(tt.token, "X-User-ID", "forged"))
			if res.Status != http.StatusOK || res.Upstream == nil {
				t.Fatalf("fail_open: got %d (%s), want 200 from the upstream", res.Status, res.Body)
			}
			for _, k := range []string{"X-User-Id", "X-User-Roles", "X-Consumer-Id", "X-Anonymous-Consumer"} {
				if v := res.Upstream.Header.Values(k); len(v) != 0 {
					t.Errorf("fail_open: got %s %q upstream, want none", k, v)
				}
			}

			anon := gateway(t, a, settings+"on_error: fail_open\n", authtest.Options{},
				authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))
			res = anon.Do(t, "/", bearer(tt.token))
			if res.Status != http.StatusOK || res.Upstream.Header.Get("X-Consumer-ID") != "guest-1" ||
				res.Upstream.Header.Get("X-Anonymous-Consumer") != "true" || res.Upstream.Header.Get("X-User-ID") != "" {
				t.Errorf("fail_open with anonymous: got %d, want 200 as guest without X-User-ID", res.Status)
			}
		})
	}
}

// TestFailOpenStillChecksACL: fail_open admits without a consumer, so an
// acl on the route refuses (401) unless an anonymous consumer is allowed.
func TestFailOpenStillChecksACL(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, "url: "+closedURL(t)+"\non_error: fail_open\n", authtest.Options{},
		authtest.Configure(t, acl.Registration(), "{allow: [ops]}"))
	if res := g.Do(t, "/", bearer("app")); res.Status != http.StatusUnauthorized || res.Upstream != nil {
		t.Errorf("got %d, want 401 from acl", res.Status)
	}
}

// TestConsumerMapping: consumer_header names the consumer, so acl groups
// apply; an answer naming no known consumer is refused.
func TestConsumerMapping(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, "consumer_header: X-Consumer\n", authtest.Options{},
		authtest.Configure(t, acl.Registration(), "{allow: [ops]}"))
	tests := []struct {
		token  string
		want   int
		wantID string
	}{
		{"app", 200, "app-1"},
		{"other", 403, ""},
		{"stranger", 403, ""},
		{"good", 403, ""}, // admitted by the service, but names no consumer
	}
	for _, tt := range tests {
		res := g.Do(t, "/", bearer(tt.token))
		if res.Status != tt.want {
			t.Errorf("%s: got %d (%s), want %d", tt.token, res.Status, res.Body, tt.want)
			continue
		}
		if tt.want == 200 && res.Upstream.Header.Get("X-Consumer-ID") != tt.wantID {
			t.Errorf("%s: got X-Consumer-ID %q, want %q", tt.token, res.Upstream.Header.Get("X-Consumer-ID"), tt.wantID)
		}
		if tt.token == "stranger" && !strings.Contains(res.Body, "no known consumer") {
			t.Errorf("stranger: got %s, want the unknown-consumer detail", res.Body)
		}
	}
}

// TestWithKeyAuth combines forward_auth with key_auth under the gate's
// modes.
func TestWithKeyAuth(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	key := func() pipeline.Configured { return authtest.Configure(t, keyauth.Registration(), "") }
	anyGW := gateway(t, a, identity, authtest.Options{}, key())
	allGW := gateway(t, a, identity, authtest.Options{}, key(), authtest.Configure(t, authgate.Registration(), "{mode: all}"))
	tests := []struct {
		name     string
		g        *authtest.Gateway
		header   http.Header
		want     int
		wantID   string // X-Consumer-ID
		wantUser string // X-User-ID
	}{
		{"any: key, no session", anyGW, bearer("", "X-API-Key", appKey), 200, "app-1", ""},
		{"any: session, no key", anyGW, bearer("good"), 200, "", "user-1"},
		{"any: both", anyGW, bearer("good", "X-API-Key", appKey), 200, "app-1", "user-1"},
		{"any: bad session, no key: the service's refusal", anyGW, bearer("bad"), 401, "", ""},
		{"all: both", allGW, bearer("good", "X-API-Key", appKey), 200, "app-1", "user-1"},
		{"all: key and a refused session", allGW, bearer("forbidden", "X-API-Key", appKey), 403, "", ""},
		{"all: session without key", allGW, bearer("good"), 401, "", ""},
	}
	for _, tt := range tests {
		res := tt.g.Do(t, "/", tt.header)
		if res.Status != tt.want {
			t.Errorf("%s: got %d (%s), want %d", tt.name, res.Status, res.Body, tt.want)
			continue
		}
		if tt.want != 200 {
			if res.Upstream != nil {
				t.Errorf("%s: reached the upstream", tt.name)
			}
			continue
		}
		if got := res.Upstream.Header.Get("X-Consumer-ID"); got != tt.wantID {
			t.Errorf("%s: got X-Consumer-ID %q, want %q", tt.name, got, tt.wantID)
		}
		if got := res.Upstream.Header.Get("X-User-ID"); got != tt.wantUser {
			t.Errorf("%s: got X-User-ID %q, want %q", tt.name, got, tt.wantUser)
		}
	}
	if res := anyGW.Do(t, "/", bearer("bad")); res.Body != `{"error":"invalid_token"}` {
		t.Errorf("any: got body %q, want the service's", res.Body)
	}
	if res := allGW.Do(t, "/", bearer("good")); !strings.Contains(res.Body, "no API key") {
		t.Errorf("all: got %s, want key_auth's refusal", res.Body)
	}
}

// TestAnonymous: with an anonymous consumer a refusal becomes anonymous
// access, and no identity the service gave for someone else goes upstream.
func TestAnonymous(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	key := authtest.Configure(t, keyauth.Registration(), "")
	g := gateway(t, a, identity, authtest.Options{}, key,
		authtest.Configure(t, authgate.Registration(), "{mode: all, anonymous: guest}"))
	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"refused by the service", bearer("bad", "X-User-ID", "forged")},
		{"admitted by the service, no key (mode all)", bearer("good", "X-User-Roles", "forged")},
	} {
		res := g.Do(t, "/", tt.header)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: got %d, want 200 as anonymous", tt.name, res.Status)
		}
		up := res.Upstream.Header
		if up.Get("X-Consumer-ID") != "guest-1" || up.Get("X-Anonymous-Consumer") != "true" {
			t.Errorf("%s: got consumer %q, want guest-1 anonymous", tt.name, up.Get("X-Consumer-ID"))
		}
		if v := up.Values("X-User-ID"); len(v) != 0 {
			t.Errorf("%s: got X-User-ID %q, want none", tt.name, v)
		}
		if v := up.Values("X-User-Roles"); len(v) != 0 {
			t.Errorf("%s: got X-User-Roles %q, want none", tt.name, v)
		}
	}
}

// TestBodyForwarding: with forward_body the service gets the body and the
// upstream gets it unchanged, with a known length or chunked; a body over
// max_body is refused with 413 without a call, and still reaches the
// upstream whole when another plugin admits the request.
func TestBodyForwarding(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, "forward_body: true\nmax_body: 16\nrequest_headers: [Authorization]\n", authtest.Options{},
		authtest.Configure(t, keyauth.Registration(), ""))

	res := g.Send(t, g.NewRequest(t, http.MethodPost, "/", strings.NewReader("expected body"),
		bearer("echo", "Content-Type", "text/plain")))
	if res.Status != http.StatusOK || res.Upstream.Body != "expected body" || res.Upstream.ContentLength != 13 {
		t.Fatalf("got %d, upstream body %q (length %d), want 200 and the body unchanged", res.Status, res.Upstream.Body, res.Upstream.ContentLength)
	}
	if c := a.last(t); c.Body != "expected body" || c.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("service got body %q type %q, want the body and its type", c.Body, c.Header.Get("Content-Type"))
	}

	chunked := g.NewRequest(t, http.MethodPut, "/", io.MultiReader(strings.NewReader("expected "), strings.NewReader("body")), bearer("echo"))
	chunked.ContentLength = -1
	res = g.Send(t, chunked)
	if res.Status != http.StatusOK || res.Upstream.Body != "expected body" {
		t.Fatalf("chunked: got %d, upstream body %q, want 200 and the body", res.Status, res.Upstream.Body)
	}

	res = g.Send(t, g.NewRequest(t, http.MethodPost, "/", strings.NewReader("the wrong body"), bearer("echo")))
	if res.Status != http.StatusForbidden || res.Upstream != nil {
		t.Errorf("wrong body: got %d, want 403", res.Status)
	}

	calls := a.calls.Load()
	big := strings.Repeat("b", 17)
	for _, length := range []int64{17, -1} {
		req := g.NewRequest(t, http.MethodPost, "/", strings.NewReader(big), bearer("echo"))
		req.ContentLength = length
		res = g.Send(t, req)
		if res.Status != http.StatusRequestEntityTooLarge || res.Upstream != nil {
			t.Errorf("too large (length %d): got %d, want 413", length, res.Status)
		}
		req = g.NewRequest(t, http.MethodPost, "/", strings.NewReader(big), bearer("echo", "X-API-Key", appKey))
		req.ContentLength = length
		res = g.Send(t, req)
		if res.Status != http.StatusOK || res.Upstream.Body != big {
			t.Errorf("too large with a key (length %d): got %d, upstream body %q, want 200 and the whole body", length, res.Status, res.Upstream.Body)
		}
	}
	if n := a.calls.Load(); n != calls {
		t.Errorf("got %d calls for bodies over max_body, want none", n-calls)
	}
}

// TestCache: decisions are cached by the credentials: admissions (with
// their headers) and 401/403 refusals (with their answer); redirects and
// no-store answers are not; key_uri keys by what is asked for too.
func TestCache(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	g := gateway(t, a, identity+"cache: {ttl: 1m}\n", authtest.Options{})
	count := func(name string, want int64, do func()) {
		t.Helper()
		before := a.calls.Load()
		do()
		if got := a.calls.Load() - before; got != want {
			t.Errorf("%s: got %d calls, want %d", name, got, want)
		}
	}
	count("admitted twice", 1, func() {
		for range 2 {
			res := g.Do(t, "/a", bearer("good"))
			if res.Status != 200 || res.Upstream.Header.Get("X-User-Roles") != "admin" {
				t.Errorf("got %d roles %q, want 200 admin", res.Status, res.Upstream.Header.Get("X-User-Roles"))
			}
		}
	})
	count("another path, same credentials", 0, func() { g.Do(t, "/b", bearer("good")) })
	count("another cookie", 1, func() { g.Do(t, "/a", bearer("good", "Cookie", "sid=2")) })
	count("401 twice", 1, func() {
		for range 2 {
			if res := g.Do(t, "/", bearer("bad")); res.Status != 401 || res.Body != `{"error":"invalid_token"}` {
				t.Errorf("got %d %q, want the cached 401", res.Status, res.Body)
			}
		}
	})
	count("403 twice", 1, func() { g.Do(t, "/", bearer("forbidden")); g.Do(t, "/", bearer("forbidden")) })
	count("302 is not cached", 2, func() { g.Do(t, "/", nil); g.Do(t, "/", nil) })
	count("no-store is not cached", 2, func() { g.Do(t, "/", bearer("no-store")); g.Do(t, "/", bearer("no-store")) })
	count("outages are not cached", 2, func() { g.Do(t, "/", bearer("boom")); g.Do(t, "/", bearer("boom")) })

	byURI := gateway(t, a, "cache: {ttl: 1m, key_uri: true}\n", authtest.Options{Route: "by-uri"})
	count("key_uri: two paths", 2, func() { byURI.Do(t, "/a", bearer("good")); byURI.Do(t, "/b", bearer("good")) })
	count("key_uri: same path and query", 0, func() { byURI.Do(t, "/a", bearer("good")); byURI.Do(t, "/b", bearer("good")) })
	count("key_uri: another query", 1, func() { byURI.Do(t, "/a?x=1", bearer("good")) })
	count("key_uri: another method", 1, func() { byURI.Send(t, byURI.NewRequest(t, http.MethodPost, "/a", nil, bearer("good"))) })
}

// TestCacheTTL: entries expire after ttl, or after the answer's max-age
// when that is shorter; the clock is the decision store's own.
func TestCacheTTL(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	settings := "url: " + a.srv.URL + "/check\n" + identity + "cache: {ttl: 10s}\n"
	spec := authtest.Configure(t, Registration(), settings).Spec.(*Spec)
	clk := newClock()
	shared := pipeline.NewShared()
	pipeline.Get(shared, cacheKey("test", spec), func() *decisions { return newDecisions(100, clk.now) })
	g := gateway(t, a, settings, authtest.Options{Shared: shared})
	calls := func() int64 { return a.calls.Load() }

	g.Do(t, "/", bearer("good"))
	g.Do(t, "/", bearer("max-age-1"))
	if calls() != 2 {
		t.Fatalf("got %d calls, want 2", calls())
	}
	clk.advance(1500 * time.Millisecond)
	g.Do(t, "/", bearer("good"))
	if calls() != 2 {
		t.Errorf("good after 1.5s: got %d calls, want the cached decision", calls())
	}
	res := g.Do(t, "/", bearer("max-age-1"))
	if calls() != 3 || res.Upstream.Header.Get("X-User-ID") != "user-ma" {
		t.Errorf("max-age=1 after 1.5s: got %d calls, want a new call", calls())
	}
	clk.advance(9 * time.Second)
	g.Do(t, "/", bearer("good"))
	if calls() != 4 {
		t.Errorf("good after 10.5s: got %d calls, want a new call", calls())
	}
}

// TestCacheBounded: the cache keeps at most max_entries decisions, the
// least recently used going first.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	settings := "cache: {ttl: 1m, max_entries: 2}\nrequest_headers: [Authorization, X-Session]\n"
	shared := pipeline.NewShared()
	g := gateway(t, a, settings, authtest.Options{Shared: shared})
	spec := authtest.Configure(t, Registration(), "url: "+a.srv.URL+"/check\n"+settings).Spec.(*Spec)
	st, ok := pipeline.Lookup(shared, cacheKey("test", spec))
	if !ok {
		t.Fatal("got no decision cache in Shared")
	}
	for _, s := range []string{"1", "2", "1", "3"} { // 2 is the least recently used when 3 comes
		g.Do(t, "/", bearer("good", "X-Session", s))
	}
	if st.len() != 2 {
		t.Errorf("got %d entries, want 2", st.len())
	}
	before := a.calls.Load()
	g.Do(t, "/", bearer("good", "X-Session", "1"))
	g.Do(t, "/", bearer("good", "X-Session", "3"))
	if got := a.calls.Load() - before; got != 0 {
		t.Errorf("recently used sessions: got %d calls, want 0", got)
	}
	g.Do(t, "/", bearer("good", "X-Session", "2"))
	if got := a.calls.Load() - before; got != 1 {
		t.Errorf("evicted session: got %d calls, want 1", got)
	}
}

// TestCacheSurvivesReload: a new gateway built with the same Shared and
// settings (a reload) answers from the cache; other settings get their
// own cache.
func TestCacheSurvivesReload(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	shared := pipeline.NewShared()
	settings := identity + "cache: {ttl: 1m}\n"
	gateway(t, a, settings, authtest.Options{Shared: shared}).Do(t, "/", bearer("good"))
	shared.Begin()
	res := gateway(t, a, settings, authtest.Options{Shared: shared}).Do(t, "/", bearer("good"))
	if a.calls.Load() != 1 || res.Upstream.Header.Get("X-User-Roles") != "admin" {
		t.Errorf("after a reload: got %d calls, roles %q, want 1 call and the cached headers", a.calls.Load(), res.Upstream.Header.Get("X-User-Roles"))
	}
	gateway(t, a, "response_headers: [X-User-ID]\ncache: {ttl: 1m}\n", authtest.Options{Shared: shared}).Do(t, "/", bearer("good"))
	if a.calls.Load() != 2 {
		t.Errorf("other response_headers: got %d calls, want a new call", a.calls.Load())
	}
}

// TestCredentialID: the Exchange's credential names the credentials by a
// digest prefix, never by their value, and is empty without any.
func TestCredentialID(t *testing.T) {
	t.Parallel()
	d1, d2 := credentialOf(t, "Bearer secret-one"), credentialOf(t, "Bearer secret-two")
	if !strings.HasPrefix(d1, "forward_auth:") || len(d1) != len("forward_auth:")+12 || d1 == d2 {
		t.Errorf("got %q and %q, want two different forward_auth:<12 hex>", d1, d2)
	}
	if strings.Contains(d1, "secret") {
		t.Errorf("got %q, which shows the credential", d1)
	}
	if d := credentialOf(t, ""); d != "" {
		t.Errorf("got %q without credentials, want none", d)
	}
}

func credentialOf(t *testing.T, authorization string) string {
	t.Helper()
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	_, d, ok := appendCredential(nil, h, []string{"Authorization", "Cookie"})
	if !ok {
		return ""
	}
	return credentialID(d)
}

// TestMetrics counts decisions by result and times the calls.
func TestMetrics(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	tel := telemetry.New()
	g := gateway(t, a, "cache: {ttl: 1m}\ntimeout: 200ms\n", authtest.Options{Route: "api", Telemetry: tel})
	for _, tok := range []string{"good", "good", "bad", "bad", "boom", "huge"} {
		g.Do(t, "/", bearer(tok))
	}
	page := telemetrytest.Scrape(t, tel)
	for result, want := range map[string]float64{"admitted": 1, "cached_admitted": 1, "refused": 1, "cached_refused": 1, "error": 2} {
		series := `portico_forward_auth_decisions_total{result="` + result + `",route="api"}`
		if got, ok := page.Value(series); !ok || got != want {
			t.Errorf("%s: got %v (present %v), want %v", series, got, ok, want)
		}
	}
	if got, _ := page.Value(`portico_forward_auth_duration_seconds_count{route="api"}`); got != 4 {
		t.Errorf("calls timed: got %v, want 4", got)
	}
}

// TestGateHeadersRefused: response_headers may not name a header the auth
// gate sets for consumers.
func TestGateHeadersRefused(t *testing.T) {
	t.Parallel()
	a := newAuthService(t)
	for _, tt := range []struct{ settings, gate string }{
		{"response_headers: [X-Consumer-ID]", ""},
		{"response_headers: [X-Caller]", "{headers: {consumer_name: x-caller}}"},
	} {
		others := []pipeline.Configured{}
		if tt.gate != "" {
			others = append(others, authtest.Configure(t, authgate.Registration(), tt.gate))
		}
		_, err := authtest.Build(t, authtest.Options{Consumers: consumers()},
			append([]pipeline.Configured{authtest.Configure(t, Registration(), "url: "+a.srv.URL+"\n"+tt.settings)}, others...)...)
		if err == nil || !strings.Contains(err.Error(), "routes[0].plugins.forward_auth: response_headers:") ||
			!strings.Contains(err.Error(), "is set by the auth gate") {
			t.Errorf("%s: got %v, want a located error", tt.settings, err)
		}
	}
}

// TestBadCAFileFailsTheBuild: tls files are read when the config is
// compiled, and a bad one is a located error.
func TestBadCAFileFailsTheBuild(t *testing.T) {
	t.Parallel()
	_, err := authtest.Build(t, authtest.Options{},
		authtest.Configure(t, Registration(), "url: https://auth.internal/check\ntls: {ca_file: /nonexistent/ca.pem}"))
	if err == nil || !strings.Contains(err.Error(), "routes[0].plugins.forward_auth: tls: ca_file") {
		t.Errorf("got %v, want a located ca_file error", err)
	}
}

// TestHTTPSWithCAFile: an https service is trusted through tls.ca_file;
// without it the system roots do not know its certificate, which is an
// outage (503), never an admission.
func TestHTTPSWithCAFile(t *testing.T) {
	t.Parallel()
	a := &authService{}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshake below fails on purpose
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	g := gateway(t, a, identity+"tls: {ca_file: "+ca+", server_name: example.com}\n", authtest.Options{})
	if res := g.Do(t, "/", bearer("good")); res.Status != http.StatusOK || res.Upstream.Header.Get("X-User-ID") != "user-1" {
		t.Errorf("with ca_file: got %d, want 200 as user-1", res.Status)
	}
	untrusted := gateway(t, a, identity, authtest.Options{})
	if res := untrusted.Do(t, "/", bearer("good")); res.Status != http.StatusServiceUnavailable {
		t.Errorf("without ca_file: got %d, want 503", res.Status)
	}
	if n := a.calls.Load(); n != 1 {
		t.Errorf("got %d calls answered, want 1 (the untrusted handshake fails first)", n)
	}
}

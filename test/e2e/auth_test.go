package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// forgedIdentity are identity headers a client tries to smuggle upstream.
var forgedIdentity = []string{
	"X-Consumer-ID", "forged-id",
	"X-Consumer-Name", "forged-name",
	"X-Consumer-Groups", "admins",
	"X-User-ID", "forged-user",
	"X-Anonymous-Consumer", "forged",
}

// waitReady polls the admin /ready endpoint until it answers 200.
func waitReady(t *testing.T, g *gw) {
	t.Helper()
	c := newClient(t)
	eventually(t, 10*time.Second, func() error {
		resp, err := c.Get(g.AdminURL("/ready"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/ready: got %d, want 200", resp.StatusCode)
		}
		return nil
	})
}

// TestIdentityHeadersNeverForged checks that client-sent identity headers
// never reach an upstream, on a route without authentication as well as on
// one with key_auth, where the upstream gets the real consumer's values.
func TestIdentityHeadersNeverForged(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	g := startGateway(t, base+fmt.Sprintf(`consumers:
  - name: alice
    id: alice-id
    groups: [ops, dev]
    credentials: {api_keys: ["alice-key-0123456789"]}
services:
  - {name: svc, url: %q}
routes:
  - {name: open, match: {paths: ["/open"]}, service: svc}
  - name: keyed
    match: {paths: ["/keyed"]}
    service: svc
    plugins:
      key_auth: {}
`, up.URL()))
	c := newClient(t)

	resp, body := get(t, c, g.URL("/open"), append([]string{"X-Request-ID", "forge-open"}, forgedIdentity...)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/open: got %d, want 200; body %s", resp.StatusCode, body)
	}
	s, ok := up.byID("forge-open")
	if !ok {
		t.Fatal("upstream did not receive forge-open")
	}
	for i := 0; i < len(forgedIdentity); i += 2 {
		if v, ok := s.Header[forgedIdentity[i]]; ok {
			t.Errorf("/open: forged %s reached the upstream: %q", forgedIdentity[i], v)
		}
	}

	resp, body = get(t, c, g.URL("/keyed"), append([]string{"X-Request-ID", "forge-keyed",
		"X-API-Key", "alice-key-0123456789"}, forgedIdentity...)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/keyed: got %d, want 200; body %s", resp.StatusCode, body)
	}
	s, ok = up.byID("forge-keyed")
	if !ok {
		t.Fatal("upstream did not receive forge-keyed")
	}
	want := map[string][]string{
		"X-Consumer-Id":     {"alice-id"},
		"X-Consumer-Name":   {"alice"},
		"X-Consumer-Groups": {"ops, dev"},
	}
	for name, w := range want {
		if got := s.Header[name]; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("/keyed: upstream %s: got %q, want %q", name, got, w)
		}
	}
	for _, name := range []string{"X-User-Id", "X-Anonymous-Consumer"} {
		if v, ok := s.Header[name]; ok {
			t.Errorf("/keyed: forged %s reached the upstream: %q", name, v)
		}
	}
}

// TestJWKSEndToEnd checks RS256 tokens verified with keys fetched from a
// JWKS URL: readiness waits for the first fetch, a rotated key is fetched
// once, keys survive the key server going away, and refusals carry RFC 6750
// challenges and never reach the upstream.
func TestJWKSEndToEnd(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t)
	k1, k2 := newRSAKey(t), newRSAKey(t)
	ks.add(rsaJWK("k1", &k1.PublicKey))
	up := newUpstream(t, "api", nil)
	const iss, aud = "https://idp.example", "portico-api"
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: api
    plugins:
      jwt:
        algorithms: [RS256]
        jwks_url: %q
        jwks_min_refetch: 50ms
        issuer: %s
        audience: %s
        claims_to_headers: {email: X-User-Email}
`, up.URL(), ks.URL()+"/jwks.json", iss, aud))
	waitReady(t, g)
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("key set fetches once ready: got %d, want 1", n)
	}
	c := newClient(t)
	claims := func(sub, audience string) jwtlib.MapClaims {
		return jwtlib.MapClaims{"iss": iss, "aud": audience, "sub": sub, "email": sub + "@example.com"}
	}
	call := func(id, token string) (*http.Response, []byte) {
		t.Helper()
		hdr := []string{"X-Request-ID", id, "X-User-Email", "forged@example.com"}
		if token != "" {
			hdr = append(hdr, "Authorization", "Bearer "+token)
		}
		return get(t, c, g.URL("/api/orders"), hdr...)
	}
	checkUser := func(id, sub string) {
		t.Helper()
		if got := upstreamHeader(t, up, id, "X-User-ID"); got != sub {
			t.Errorf("%s: upstream X-User-ID: got %q, want %q", id, got, sub)
		}
		if got := upstreamHeader(t, up, id, "X-User-Email"); got != sub+"@example.com" {
			t.Errorf("%s: upstream X-User-Email: got %q, want %s@example.com", id, got, sub)
		}
	}

	tok1 := signToken(t, jwtlib.SigningMethodRS256, k1, "k1", claims("user-1", aud))
	if resp, body := call("jwks-k1", tok1); resp.StatusCode != http.StatusOK {
		t.Fatalf("k1 token: got %d, want 200; body %s", resp.StatusCode, body)
	}
	checkUser("jwks-k1", "user-1")

	// Rotation: the key server now serves k2 as well. The first k2 tokens
	// may arrive within jwks_min_refetch of the first fetch; once one is
	// accepted the set was fetched exactly once more.
	ks.add(rsaJWK("k2", &k2.PublicKey))
	tok2 := signToken(t, jwtlib.SigningMethodRS256, k2, "k2", claims("user-2", aud))
	var rotated []string
	eventually(t, 5*time.Second, func() error {
		id := fmt.Sprintf("jwks-k2-%d", len(rotated))
		rotated = append(rotated, id)
		if resp, body := call(id, tok2); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("k2 token: got %d, want 200; body %s", resp.StatusCode, body)
		}
		return nil
	})
	checkUser(rotated[len(rotated)-1], "user-2")
	checkNotForwarded(t, up, rotated[:len(rotated)-1]...)
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("key set fetches after rotation: got %d, want 2", n)
	}

	// The key server goes away: known keys keep working.
	ks.srv.Close()
	for i, tok := range []string{tok1, tok2} {
		id := fmt.Sprintf("jwks-down-%d", i)
		if resp, body := call(id, tok); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the key server down: got %d, want 200; body %s", id, resp.StatusCode, body)
		}
	}

	bad := signToken(t, jwtlib.SigningMethodRS256, k1, "k1", claims("user-1", "someone-else"))
	resp, body := call("jwks-aud", bad)
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("wrong audience: WWW-Authenticate: got %q, want error=\"invalid_token\"", ch)
	}
	resp, body = call("jwks-none", "")
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); ch != `Bearer realm="portico"` {
		t.Errorf("no token: WWW-Authenticate: got %q, want %q", ch, `Bearer realm="portico"`)
	}
	checkNotForwarded(t, up, "jwks-aud", "jwks-none")
}

// TestOIDCDiscoveryEndToEnd checks ES256 tokens verified with the key set
// an OpenID Connect issuer advertises in its discovery document.
func TestOIDCDiscoveryEndToEnd(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t)
	k := newECKey(t)
	ks.add(ecJWK(t, "ec1", &k.PublicKey))
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: api
    plugins:
      jwt: {algorithms: [ES256], issuer_discovery: %q}
`, up.URL(), ks.URL()))
	waitReady(t, g)
	c := newClient(t)

	tok := signToken(t, jwtlib.SigningMethodES256, k, "ec1", jwtlib.MapClaims{"iss": ks.URL(), "sub": "oidc-user"})
	resp, body := get(t, c, g.URL("/api"), "X-Request-ID", "oidc-good", "Authorization", "Bearer "+tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovered key: got %d, want 200; body %s", resp.StatusCode, body)
	}
	if got := upstreamHeader(t, up, "oidc-good", "X-User-ID"); got != "oidc-user" {
		t.Errorf("upstream X-User-ID: got %q, want oidc-user", got)
	}

	other := signToken(t, jwtlib.SigningMethodES256, k, "ec1", jwtlib.MapClaims{"iss": "https://other.example", "sub": "x"})
	resp, body = get(t, c, g.URL("/api"), "X-Request-ID", "oidc-iss", "Authorization", "Bearer "+other)
	checkProblem(t, resp, body, http.StatusUnauthorized)
	checkNotForwarded(t, up, "oidc-iss")
}

// TestIntrospectionEndToEnd checks oauth2_introspection against a real
// endpoint: results are cached, inactive tokens are refused, and while the
// endpoint is down cached tokens pass and unknown ones get 503.
func TestIntrospectionEndToEnd(t *testing.T) {
	t.Parallel()
	in := newIntrospector(t, "portico", "client-secret-value")
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: api
    plugins:
      oauth2_introspection:
        endpoint: %q
        client_id: portico
        client_secret: client-secret-value
`, up.URL(), in.srv.URL+"/introspect"))
	c := newClient(t)
	call := func(id, token string) (*http.Response, []byte) {
		t.Helper()
		return get(t, c, g.URL("/api"), "X-Request-ID", id, "Authorization", "Bearer "+token)
	}

	for _, id := range []string{"intro-1", "intro-2"} {
		if resp, body := call(id, "good"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: good token: got %d, want 200; body %s", id, resp.StatusCode, body)
		}
	}
	if got := upstreamHeader(t, up, "intro-1", "X-User-ID"); got != "user-7" {
		t.Errorf("upstream X-User-ID: got %q, want user-7", got)
	}
	if n := in.calls.Load(); n != 1 {
		t.Errorf("introspection calls for one token used twice: got %d, want 1", n)
	}

	resp, body := call("intro-bad", "bad")
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, "invalid_token") {
		t.Errorf("inactive token: WWW-Authenticate: got %q, want invalid_token", ch)
	}

	in.srv.Close()
	if resp, body := call("intro-down-good", "good"); resp.StatusCode != http.StatusOK {
		t.Errorf("cached token with the endpoint down: got %d, want 200; body %s", resp.StatusCode, body)
	}
	resp, body = call("intro-down-new", "never-seen")
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Errorf("503 with the endpoint down: no Retry-After header")
	}
	checkNotForwarded(t, up, "intro-bad", "intro-down-new")
}

// TestMultipleAuthPluginsAndACL checks routes with several authentication
// plugins: any one admits (then acl decides), mode all requires every one,
// and an anonymous consumer admits callers without credentials.
func TestMultipleAuthPluginsAndACL(t *testing.T) {
	t.Parallel()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 10)
		if err != nil {
			t.Fatalf("bcrypt: %s", err)
		}
		return string(h)
	}
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`consumers:
  - name: alice
    groups: [ops]
    credentials:
      api_keys: ["alice-key-0123456789"]
      basic_auth: [{username: alice, password_hash: %q}]
  - name: bob
    groups: [dev]
    credentials:
      basic_auth: [{username: bob, password_hash: %q}]
  - name: guest
services:
  - {name: api, url: %q}
routes:
  - name: ops
    match: {paths: ["/ops"]}
    service: api
    plugins:
      key_auth: {}
      basic_auth: {}
      acl: {allow: [ops]}
  - name: both
    match: {paths: ["/both"]}
    service: api
    plugins:
      key_auth: {}
      basic_auth: {}
      auth: {mode: all}
  - name: public
    match: {paths: ["/public"]}
    service: api
    plugins:
      key_auth: {}
      auth: {anonymous: guest}
`, hash("alice-password"), hash("bob-password"), up.URL()))
	c := newClient(t)
	basic := func(user, pw string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pw)
		return r.Header.Get("Authorization")
	}
	const aliceKey = "alice-key-0123456789"

	if resp, body := get(t, c, g.URL("/ops"), "X-Request-ID", "ops-key", "X-API-Key", aliceKey); resp.StatusCode != http.StatusOK {
		t.Errorf("/ops with an ops key: got %d, want 200; body %s", resp.StatusCode, body)
	} else if got := upstreamHeader(t, up, "ops-key", "X-Consumer-Name"); got != "alice" {
		t.Errorf("/ops upstream X-Consumer-Name: got %q, want alice", got)
	}
	resp, body := get(t, c, g.URL("/ops"), "X-Request-ID", "ops-bob", "Authorization", basic("bob", "bob-password"))
	checkProblem(t, resp, body, http.StatusForbidden)
	resp, body = get(t, c, g.URL("/ops"), "X-Request-ID", "ops-none")
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/ops without credentials: no WWW-Authenticate challenge")
	}

	resp, body = get(t, c, g.URL("/both"), "X-Request-ID", "both-key", "X-API-Key", aliceKey)
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if resp, body := get(t, c, g.URL("/both"), "X-Request-ID", "both-ok", "X-API-Key", aliceKey,
		"Authorization", basic("alice", "alice-password")); resp.StatusCode != http.StatusOK {
		t.Errorf("/both with key and password: got %d, want 200; body %s", resp.StatusCode, body)
	}

	if resp, body := get(t, c, g.URL("/public"), append([]string{"X-Request-ID", "anon"}, forgedIdentity...)...); resp.StatusCode != http.StatusOK {
		t.Fatalf("/public without credentials: got %d, want 200; body %s", resp.StatusCode, body)
	}
	if got := upstreamHeader(t, up, "anon", "X-Anonymous-Consumer"); got != "true" {
		t.Errorf("/public upstream X-Anonymous-Consumer: got %q, want true", got)
	}
	if got := upstreamHeader(t, up, "anon", "X-Consumer-Name"); got != "guest" {
		t.Errorf("/public upstream X-Consumer-Name: got %q, want guest", got)
	}
	if resp, body := get(t, c, g.URL("/public"), "X-Request-ID", "anon-key", "X-API-Key", aliceKey); resp.StatusCode != http.StatusOK {
		t.Errorf("/public with a key: got %d, want 200; body %s", resp.StatusCode, body)
	} else if got := upstreamHeader(t, up, "anon-key", "X-Anonymous-Consumer"); got != "" {
		t.Errorf("/public with a key: upstream X-Anonymous-Consumer: got %q, want none", got)
	}
	checkNotForwarded(t, up, "ops-bob", "ops-none", "both-key")
}

// authBadConfig has four authentication mistakes; its secrets must never
// be echoed.
const authBadConfig = `listen: 127.0.0.1:0
consumers:
  - name: a
    credentials:
      api_keys: ["shared-key-0123456789"]
      basic_auth:
        - {username: a, password_hash: "plain-password-value"}
  - name: b
    credentials:
      api_keys: ["shared-key-0123456789"]
services:
  - {name: api, url: "http://127.0.0.1:9"}
routes:
  - name: none
    match: {paths: ["/none"]}
    service: api
    plugins:
      jwt: {algorithms: [none]}
  - name: hs
    match: {paths: ["/hs"]}
    service: api
    plugins:
      jwt: {algorithms: [HS256], secret: "short-hmac-secret-xyz"}
`

// TestAuthConfigErrors checks that `portico validate` reports every
// authentication mistake at its place and never prints a secret.
func TestAuthConfigErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(file, []byte(authBadConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "validate", "-c", file)
	out := stdout + stderr
	if code != 1 {
		t.Errorf("exit code: got %d, want 1; output:\n%s", code, out)
	}
	lineRE := regexp.MustCompile(`^(.+):(\d+):(\d+): (\S+): (.+)$`)
	got := map[string]string{} // path -> line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil || m[1] != file {
			t.Errorf("output line %q is not %s:LINE:COL: path: message", l, file)
			continue
		}
		got[m[4]] = m[2]
	}
	for path, line := range map[string]string{
		"routes[0].plugins.jwt.algorithms[0]":                  "18",
		"routes[1].plugins.jwt.secret":                         "23",
		"consumers[0].credentials.basic_auth[0].password_hash": "7",
		"consumers[1].credentials.api_keys[0]":                 "10",
	} {
		if got[path] != line {
			t.Errorf("error for %s: got line %q, want %s", path, got[path], line)
		}
	}
	if got["consumers[1].credentials.api_keys[0]"] != "" && got["routes[1].plugins.jwt.secret"] == "" {
		t.Errorf("validate reports the consumer errors but none of the plugin errors: " +
			"every error must come out in one run, not the plugin errors only after the rest are fixed")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	for _, secret := range []string{"shared-key-0123456789", "plain-password-value", "short-hmac-secret-xyz"} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains the secret %q:\n%s", secret, out)
		}
	}
}

package e2e

import (
	"crypto"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

// signTyped signs an RS256 token under kid with header parameters set on
// top of alg and typ JWT; a nil value removes the parameter.
func signTyped(t *testing.T, key crypto.Signer, kid string, claims jwtlib.MapClaims, header map[string]any) string {
	t.Helper()
	all := jwtlib.MapClaims{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		all[k] = v
	}
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, all)
	tok.Header["kid"] = kid
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %s", err)
	}
	return s
}

// TestJWTHeaderRulesEndToEnd checks explicit typing (RFC 8725 §3.11) and
// crit (RFC 7515 §4.1.11) through the binary, with keys from a JWKS URL:
// on a route with types: [at+jwt] an access token passes and a logout
// token, a plain JWT and an untyped token are refused; on a route without
// types, a plain JWT passes and a logout token is still refused; a crit
// is refused on both. Refused requests never reach the upstream.
func TestJWTHeaderRulesEndToEnd(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t)
	k := newRSAKey(t)
	ks.add(rsaJWK("k1", &k.PublicKey))
	up := newUpstream(t, "api", nil)
	const iss = "https://idp.example"
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: typed
    match: {paths: ["/typed"]}
    service: api
    plugins:
      jwt: {algorithms: [RS256], jwks_url: %q, issuer: %s, types: [at+jwt]}
  - name: default
    match: {paths: ["/default"]}
    service: api
    plugins:
      jwt: {algorithms: [RS256], jwks_url: %q, issuer: %s}
`, up.URL(), ks.URL()+"/jwks.json", iss, ks.URL()+"/jwks.json", iss))
	waitReady(t, g)
	c := newClient(t)
	token := func(header map[string]any) string {
		return signTyped(t, k, "k1", jwtlib.MapClaims{"iss": iss, "sub": "user-1"}, header)
	}
	tests := []struct {
		id, path string
		header   map[string]any
		desc     string // "" admits
	}{
		{"typed-at", "/typed", map[string]any{"typ": "at+jwt"}, ""},
		{"typed-app-at", "/typed", map[string]any{"typ": "application/at+jwt"}, ""},
		{"typed-logout", "/typed", map[string]any{"typ": "logout+jwt"}, "wrong token type"},
		{"typed-app-logout", "/typed", map[string]any{"typ": "application/logout+jwt"}, "wrong token type"},
		{"typed-jwt", "/typed", nil, "wrong token type"},
		{"typed-untyped", "/typed", map[string]any{"typ": nil}, "wrong token type"},
		{"typed-crit", "/typed", map[string]any{"typ": "at+jwt", "crit": []string{"b64"}, "b64": false}, "unsupported critical header parameter"},
		{"default-jwt", "/default", nil, ""},
		{"default-at", "/default", map[string]any{"typ": "at+jwt"}, ""},
		{"default-untyped", "/default", map[string]any{"typ": nil}, ""},
		{"default-logout", "/default", map[string]any{"typ": "logout+jwt"}, "wrong token type"},
		{"default-secevent", "/default", map[string]any{"typ": "secevent+jwt"}, "wrong token type"},
		{"default-crit-malformed", "/default", map[string]any{"crit": "notalist"}, "malformed crit header"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			resp, body := get(t, c, g.URL(tt.path), "X-Request-ID", tt.id, "Authorization", "Bearer "+token(tt.header))
			if tt.desc == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("got %d, want 200; WWW-Authenticate %q; body %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
				}
				if got := upstreamHeader(t, up, tt.id, "X-User-ID"); got != "user-1" {
					t.Errorf("upstream X-User-ID: got %q, want user-1", got)
				}
				return
			}
			p := checkProblem(t, resp, body, http.StatusUnauthorized)
			want := `Bearer realm="portico", error="invalid_token", error_description="` + tt.desc + `"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
			}
			if got, want := p["detail"], "invalid bearer token: "+tt.desc; got != want {
				t.Errorf("problem detail: got %v, want %q", got, want)
			}
			checkNotForwarded(t, up, tt.id)
		})
	}
}

// TestJWTTypesConfigErrors checks that `portico validate` locates the
// mistakes of the types setting like every other jwt setting error.
func TestJWTTypesConfigErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "types.yaml")
	src := base + `services:
  - {name: api, url: "http://127.0.0.1:9"}
routes:
  - name: empty
    match: {paths: ["/a"]}
    service: api
    plugins:
      jwt:
        algorithms: [RS256]
        jwks_url: https://idp.example/keys
        types: []
  - name: wildcard
    match: {paths: ["/b"]}
    service: api
    plugins:
      jwt:
        algorithms: [RS256]
        jwks_url: https://idp.example/keys
        types: [at+jwt, "*/*"]
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "validate", "-c", file)
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	out := strings.TrimSpace(stdout + stderr)
	want := []string{
		file + ":13:9: routes[0].plugins.jwt.types: must list at least one type, like [at+jwt]; leave types out for the default",
		file + ":21:25: routes[1].plugins.jwt.types[1]: has no wildcard meaning: list every accepted type, like [at+jwt, JWT]",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("got output\n%s\nwant a line %q", out, w)
		}
	}
}

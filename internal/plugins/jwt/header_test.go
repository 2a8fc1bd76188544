package jwt

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
)

// omitted removes a header parameter in signHeader.
type omitted struct{}

// signHeader makes a token like sign, with header parameters set (or,
// with omitted, removed) after the library's alg and typ.
func signHeader(t testing.TB, alg string, key any, claims jwtlib.MapClaims, kid string, header map[string]any) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range header {
		if _, ok := v.(omitted); ok {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %s", alg, err.Error())
	}
	return s
}

// keyPath is one way the plugin finds a token's verification key, with a
// signer whose tokens that way verifies.
type keyPath struct {
	name     string
	settings string // the jwt settings of the key source
	opts     authtest.Options
	consumer string // X-Consumer-Name upstream for an admitted token
	sign     func(t testing.TB, header map[string]any) string
}

// keyPaths returns every verification path: a static secret, a static
// public key, a consumer credential, a JWKS URL and OpenID Connect
// discovery, each with real keys and, for the remote ones, a real key
// server.
func keyPaths(t *testing.T) []keyPath {
	k := tk(t)
	js := newJWKSServer(t, jwkOf(&k.rsa2.PublicKey, "k1", "RS256"))
	oidc := oidcServer(t, func(self string) string { return self }, jwkOf(&k.p384.PublicKey, "k2", "ES384"))
	now := time.Now()
	return []keyPath{
		{name: "secret", settings: "algorithms: [HS256]\nsecret: " + string(k.hmac),
			sign: func(t testing.TB, h map[string]any) string {
				return signHeader(t, "HS256", k.hmac, claimsAt(now, nil), "", h)
			}},
		{name: "public_key", settings: "algorithms: [ES256]\npublic_key: " + yamlQuote(pubPEM(t, &k.p256.PublicKey)),
			sign: func(t testing.TB, h map[string]any) string {
				return signHeader(t, "ES256", k.p256, claimsAt(now, nil), "", h)
			}},
		{name: "consumer credential", settings: "algorithms: [RS256]\nconsumer_credentials: true",
			opts: authtest.Options{Consumers: []config.Consumer{{Name: "partner",
				Credentials: config.Credentials{JWT: []config.JWTCredential{
					{Key: "partner-co", Algorithm: "RS256", PublicKey: pubPEM(t, &k.rsa.PublicKey)}}}}}},
			consumer: "partner",
			sign: func(t testing.TB, h map[string]any) string {
				return signHeader(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"iss": "partner-co"}), "", h)
			}},
		{name: "jwks_url", settings: "algorithms: [RS256]\njwks_url: '" + js.URL + "'",
			sign: func(t testing.TB, h map[string]any) string {
				return signHeader(t, "RS256", k.rsa2, claimsAt(now, nil), "k1", h)
			}},
		{name: "issuer_discovery", settings: "algorithms: [ES384]\nissuer_discovery: '" + oidc.URL + "'",
			sign: func(t testing.TB, h map[string]any) string {
				return signHeader(t, "ES384", k.p384, claimsAt(now, jwtlib.MapClaims{"iss": oidc.URL}), "k2", h)
			}},
	}
}

// checkRefused checks a 401 invalid_token answer with desc in the
// challenge and the problem detail, and that nothing reached the upstream.
func checkRefused(t *testing.T, res authtest.Result, desc string) {
	t.Helper()
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("got status %d (%s), want 401", res.Status, res.Header.Get("WWW-Authenticate"))
	}
	want := `Bearer realm="portico", error="invalid_token", error_description="` + desc + `"`
	if got := res.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("got WWW-Authenticate %q, want %q", got, want)
	}
	if got := res.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("got Content-Type %q, want application/problem+json", got)
	}
	var p struct{ Detail string }
	if err := json.Unmarshal([]byte(res.Body), &p); err != nil {
		t.Errorf("got body %q, want problem JSON", res.Body)
	}
	if want := "invalid bearer token: " + desc; p.Detail != want {
		t.Errorf("got detail %q, want %q", p.Detail, want)
	}
	if res.Upstream != nil {
		t.Errorf("got the refused request upstream, want it stopped at the gateway")
	}
}

// checkAdmitted checks a 200 answer that reached the upstream as user-1
// (and as consumer, when set).
func checkAdmitted(t *testing.T, res authtest.Result, consumer string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("got status %d (%s), want 200", res.Status, res.Header.Get("WWW-Authenticate"))
	}
	if res.Upstream == nil {
		t.Fatal("got no request upstream, want the admitted one")
	}
	if got := res.Upstream.Header.Get("X-User-ID"); got != "user-1" {
		t.Errorf("got X-User-ID %q upstream, want user-1", got)
	}
	if got := res.Upstream.Header.Get("X-Consumer-Name"); got != consumer {
		t.Errorf("got X-Consumer-Name %q upstream, want %q", got, consumer)
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// RFC 7515 §4.1.11: a recipient that does not understand every extension
// crit names must refuse the token. Portico implements none.
func TestCritHeaderRefusedOnEveryKeyPath(t *testing.T) {
	const (
		malformed   = "malformed crit header"
		unsupported = "unsupported critical header parameter"
	)
	tests := []struct {
		name   string
		header map[string]any
		desc   string // "" admits
	}{
		{"no crit", nil, ""},
		{"exp, not a header parameter", map[string]any{"crit": []string{"exp"}}, malformed},
		{"exp, replicated in the header", map[string]any{"crit": []string{"exp"}, "exp": 9999999999}, unsupported},
		{"b64 (RFC 7797 unencoded payload)", map[string]any{"crit": []string{"b64"}, "b64": false}, unsupported},
		{"x-custom", map[string]any{"crit": []string{"x-custom"}, "x-custom": "v"}, unsupported},
		{"x-custom, absent from the header", map[string]any{"crit": []string{"x-custom"}}, malformed},
		{"empty list", map[string]any{"crit": []string{}}, malformed},
		{"not a list", map[string]any{"crit": "notalist"}, malformed},
		{"null", map[string]any{"crit": nil}, malformed},
		{"a number in the list", map[string]any{"crit": []any{42}, "42": 1}, malformed},
		{"registered parameter alg", map[string]any{"crit": []string{"alg"}}, malformed},
		{"registered parameter typ", map[string]any{"crit": []string{"typ"}}, malformed},
		{"duplicate names", map[string]any{"crit": []string{"x-custom", "x-custom"}, "x-custom": "v"}, malformed},
		{"crit is judged before typ", map[string]any{"crit": []string{"x-custom"}, "x-custom": "v", "typ": "logout+jwt"}, unsupported},
	}
	for _, kp := range keyPaths(t) {
		t.Run(kp.name, func(t *testing.T) {
			t.Parallel()
			g := authtest.Start(t, kp.opts, authtest.Configure(t, Registration(), kp.settings))
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res := g.Do(t, "/api", bearer(kp.sign(t, tt.header)))
					if tt.desc == "" {
						checkAdmitted(t, res, kp.consumer)
						return
					}
					checkRefused(t, res, tt.desc)
				})
			}
			if got := g.Upstream.Count(); got != 1 {
				t.Errorf("got %d requests upstream, want 1 (the token without crit)", got)
			}
		})
	}
}

// RFC 8725 §3.11 and §2.8: explicit typing keeps a token of one kind (a
// security event, a logout token) from passing as another (an access
// token). typ compares as RFC 7515 §4.1.9 says: case-insensitively, with
// "application/" optional.
func TestTypHeaderOnEveryKeyPath(t *testing.T) {
	configs := []struct{ name, settings string }{
		{"default", ""},
		{"at+jwt", "types: [at+jwt]"},
		{"at+jwt and JWT", "types: [at+jwt, JWT]"},
		{"logout+jwt", "types: [application/logout+jwt]"},
	}
	var (
		dflt   = []string{"default"}
		jwt    = []string{"default", "at+jwt and JWT"}
		at     = []string{"default", "at+jwt", "at+jwt and JWT"}
		logout = []string{"logout+jwt"}
	)
	tests := []struct {
		name       string
		typ        any // omitted{}: no typ
		acceptedBy []string
	}{
		{"absent", omitted{}, dflt},
		{"JWT", "JWT", jwt},
		{"jwt", "jwt", jwt},
		{"application/jwt", "application/jwt", jwt},
		{"at+jwt", "at+jwt", at},
		{"application/at+jwt", "application/at+jwt", at},
		{"Application/AT+JWT", "Application/AT+JWT", at},
		{"secevent+jwt", "secevent+jwt", nil},
		{"logout+jwt", "logout+jwt", logout},
		{"application/logout+jwt", "application/logout+jwt", logout},
		{"LOGOUT+JWT", "LOGOUT+JWT", logout},
		{"id_token+jwt", "id_token+jwt", nil},
		{"another top-level type", "text/at+jwt", nil},
		{"application/ twice", "application/application/at+jwt", nil},
		{"with a parameter", "application/at+jwt; charset=utf-8", nil},
		{"empty", "", nil},
		{"a number", 42, nil},
		{"null", nil, nil},
	}
	for _, kp := range keyPaths(t) {
		for _, cfg := range configs {
			t.Run(kp.name+"/"+cfg.name, func(t *testing.T) {
				t.Parallel()
				g := authtest.Start(t, kp.opts, authtest.Configure(t, Registration(), kp.settings+"\n"+cfg.settings))
				admitted := 0
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						res := g.Do(t, "/api", bearer(kp.sign(t, map[string]any{"typ": tt.typ})))
						if !strings.Contains(strings.Join(tt.acceptedBy, "|")+"|", cfg.name+"|") {
							checkRefused(t, res, "wrong token type")
							return
						}
						admitted++
						checkAdmitted(t, res, kp.consumer)
					})
				}
				if got := g.Upstream.Count(); got != admitted {
					t.Errorf("got %d requests upstream, want %d (the admitted ones)", got, admitted)
				}
			})
		}
	}
}

// A token the header rules refuse is refused before any key is looked up:
// forged kids with a wrong typ or a crit cause no key set fetch.
func TestHeaderRulesRunBeforeKeyLookup(t *testing.T) {
	k := tk(t)
	js := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1", "RS256"))
	g := authtest.Start(t, authtest.Options{},
		authtest.Configure(t, Registration(), "{algorithms: [RS256], jwks_url: '"+js.URL+"', types: [at+jwt]}"))
	now := time.Now()
	tests := []struct {
		name   string
		header map[string]any
		desc   string
	}{
		{"logout token", map[string]any{"typ": "logout+jwt"}, "wrong token type"},
		{"no typ", map[string]any{"typ": omitted{}}, "wrong token type"},
		{"crit", map[string]any{"typ": "at+jwt", "crit": []string{"b64"}, "b64": false}, "unsupported critical header parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefused(t, g.Do(t, "/api", bearer(signHeader(t, "RS256", k.rsa2, claimsAt(now, nil), "forged-"+tt.name, tt.header))), tt.desc)
		})
	}
	if got := js.hits.Load(); got != 0 {
		t.Errorf("got %d key set fetches, want 0", got)
	}
}

// locatedSpec decodes and validates settings under plugins.jwt of a file
// named portico.yaml, and returns the errors located as the gateway prints
// them.
func locatedSpec(src string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return err
	}
	c := &config.Config{File: "portico.yaml"}
	p := config.Path{}.Key("plugins").Key("jwt")
	s := defaultSpec()
	if err := c.DecodeNode(doc.Content[0], p, s); err != nil {
		return err
	}
	return c.Locate(s.Validate(p))
}

func TestTypesSetting(t *testing.T) {
	k := tk(t)
	keySrc := "algorithms: [HS256]\nsecret: " + string(k.hmac) + "\n"
	tests := []struct {
		name      string
		types     string   // the types line
		wantNames []string // compiled, when valid
		wantErrs  []string // located errors, exactly
	}{
		{"unset", "", []string{"jwt", "at+jwt"}, nil},
		{"null keeps the default", "types: ~", []string{"jwt", "at+jwt"}, nil},
		{"access tokens", "types: [at+jwt, JWT]", []string{"at+jwt", "jwt"}, nil},
		{"prefix and case dropped", "types: [Application/AT+JWT, secevent+jwt, text/plain]", []string{"at+jwt", "secevent+jwt", "text/plain"}, nil},
		{"empty list", "types: []", nil, []string{
			"portico.yaml:3:1: plugins.jwt.types: must list at least one type, like [at+jwt]; leave types out for the default"}},
		{"scalar", "types: at+jwt", nil, []string{"portico.yaml:3:8: plugins.jwt.types: must be a list"}},
		{"wildcards and bad names", `types: [at+jwt, "*/*", any, "", "at+jwt; q=1", "application/", -jwt, "at jwt", application/text/plain]`, nil, []string{
			"portico.yaml:3:17: plugins.jwt.types[1]: has no wildcard meaning: list every accepted type, like [at+jwt, JWT]",
			"portico.yaml:3:24: plugins.jwt.types[2]: has no wildcard meaning: list every accepted type, like [at+jwt, JWT]",
			"portico.yaml:3:29: plugins.jwt.types[3]: must be a media type like at+jwt or application/at+jwt, without parameters",
			"portico.yaml:3:33: plugins.jwt.types[4]: must be a media type like at+jwt or application/at+jwt, without parameters",
			"portico.yaml:3:48: plugins.jwt.types[5]: must be a media type like at+jwt or application/at+jwt, without parameters",
			"portico.yaml:3:64: plugins.jwt.types[6]: must be a media type like at+jwt or application/at+jwt, without parameters",
			"portico.yaml:3:70: plugins.jwt.types[7]: must be a media type like at+jwt or application/at+jwt, without parameters",
			"portico.yaml:3:80: plugins.jwt.types[8]: must be a media type like at+jwt or application/at+jwt, without parameters",
		}},
		{"the same type twice", "types:\n  - at+jwt\n  - JWT\n  - APPLICATION/AT+JWT", nil, []string{
			"portico.yaml:6:5: plugins.jwt.types[2]: repeats types[0] (case and the application/ prefix do not matter)"}},
		{"a mapping entry", "types: [{a: b}]", nil, []string{"portico.yaml:3:9: plugins.jwt.types[0]: must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := locatedSpec(keySrc + tt.types + "\n")
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantErrs, "\n") {
				t.Fatalf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantErrs, "\n"))
			}
			if err != nil {
				return
			}
			v, err := newVerifier(decodeSpec(t, keySrc+tt.types+"\n"), &pipeline.BuildEnv{}, time.Now)
			if err != nil {
				t.Fatalf("build: %s", err.Error())
			}
			if got, want := strings.Join(v.types.names, ","), strings.Join(tt.wantNames, ","); got != want {
				t.Errorf("got types %s, want %s", got, want)
			}
			if got, want := v.types.untyped, tt.types == "" || tt.types == "types: ~"; got != want {
				t.Errorf("got tokens without typ accepted %t, want %t", got, want)
			}
		})
	}
}

// The header rules add no allocation to a token that passes them.
func TestHeaderRulesAllocateNothing(t *testing.T) {
	k := tk(t)
	tests := []struct {
		name, types string
		header      map[string]any
	}{
		{"default, JWT", "", map[string]any{"alg": "HS256", "typ": "JWT"}},
		{"default, no typ", "", map[string]any{"alg": "HS256"}},
		{"listed, with application/", "types: [secevent+jwt, at+jwt]", map[string]any{"alg": "HS256", "typ": "Application/At+JWT", "kid": "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(decodeSpec(t, "algorithms: [HS256]\nsecret: "+string(k.hmac)+"\n"+tt.types+"\n"), &pipeline.BuildEnv{}, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.checkHeader(tt.header); err != nil {
				t.Fatalf("got %s, want the header accepted", err.Error())
			}
			if n := testing.AllocsPerRun(100, func() { _ = v.checkHeader(tt.header) }); n != 0 {
				t.Errorf("got %.0f allocations, want 0", n)
			}
		})
	}
}

// FuzzCheckHeader checks that no JOSE header makes the rules panic, and
// that none carrying crit passes.
func FuzzCheckHeader(f *testing.F) {
	v := &verifier{types: defaultTypes}
	f.Add(`{"alg":"HS256","typ":"JWT"}`)
	f.Add(`{"alg":"HS256","crit":["b64"],"b64":false}`)
	f.Add(`{"alg":"HS256","crit":["x","x"],"x":1}`)
	f.Add(`{"alg":"HS256","crit":"x","typ":"application/"}`)
	f.Add(`{"typ":["at+jwt"]}`)
	f.Fuzz(func(t *testing.T, src string) {
		var h map[string]any
		if json.Unmarshal([]byte(src), &h) != nil {
			return
		}
		err := v.checkHeader(h)
		if _, crit := h["crit"]; crit && err == nil {
			t.Fatalf("got header %s accepted, want a header with crit refused", src)
		}
	})
}

package jwt

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
)

func yamlQuote(s string) string {
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

func TestEveryAlgorithmAccepted(t *testing.T) {
	k := tk(t)
	tests := []struct {
		alg        string
		signingKey any
		keySpec    string
	}{
		{"HS256", k.hmac, "secret: " + string(k.hmac)},
		{"HS384", k.hmac, "secret: " + string(k.hmac)},
		{"HS512", k.hmac, "secret: " + string(k.hmac)},
		{"RS256", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"RS384", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"RS512", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"PS256", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"PS384", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"PS512", k.rsa, "public_key: " + yamlQuote(pubPEM(t, &k.rsa.PublicKey))},
		{"ES256", k.p256, "public_key: " + yamlQuote(pubPEM(t, &k.p256.PublicKey))},
		{"ES384", k.p384, "public_key: " + yamlQuote(pubPEM(t, &k.p384.PublicKey))},
		{"ES512", k.p521, "public_key: " + yamlQuote(pubPEM(t, &k.p521.PublicKey))},
		{"EdDSA", k.ed, "public_key: " + yamlQuote(pubPEM(t, k.ed.Public()))},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			spec := decodeSpec(t, "algorithms: ["+tt.alg+"]\nissuer: https://idp.test\naudience: [orders, billing]\n"+tt.keySpec+"\n")
			g := newGateway(t, spec, nil, time.Now)
			res := g.do(t, sign(t, tt.alg, tt.signingKey, claimsAt(time.Now(), nil), ""))
			if res.status != http.StatusOK {
				t.Fatalf("got status %d (%s, %s), want 200", res.status, res.challenge, res.body)
			}
			if got := g.up.lastRequest().Header.Get("X-User-ID"); got != "user-1" {
				t.Errorf("got X-User-ID %q, want user-1", got)
			}
			if got := g.up.lastRequest().Header.Get("X-Credential"); got != "jwt:https://idp.test/user-1" {
				t.Errorf("got credential %q, want jwt:https://idp.test/user-1", got)
			}
		})
	}
}

// noneToken builds an unsigned token with alg "none".
func noneToken(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "."
}

func TestRejectedTokens(t *testing.T) {
	k := tk(t)
	now := time.Now()
	rsaPEM := pubPEM(t, &k.rsa.PublicKey)
	// Both families allowed, so the alg-confusion token passes the
	// allow-list and must fail on the key binding.
	spec := decodeSpec(t, "algorithms: [RS256, HS256]\nissuer: https://idp.test\naudience: orders\n"+
		"secret: "+string(k.hmac)+"\npublic_key: "+yamlQuote(rsaPEM)+"\n"+
		"required_claims: {scope: orders:write}\n")
	g := newGateway(t, spec, nil, time.Now)
	enc := base64.RawURLEncoding.EncodeToString
	good := sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"scope": "orders:read orders:write"}), "")
	if res := g.do(t, good); res.status != http.StatusOK {
		t.Fatalf("got status %d for the good token (%s), want 200", res.status, res.challenge)
	}
	before := g.up.hits.Load()
	parts := strings.Split(good, ".")
	scoped := jwtlib.MapClaims{"scope": "orders:write"}
	tests := []struct {
		name   string
		token  string
		status int
		desc   string
	}{
		{"signed by another key", sign(t, "RS256", k.rsa2, claimsAt(now, scoped), ""), 401, "invalid signature"},
		{"alg none", noneToken(`{"iss":"https://idp.test","aud":"orders","sub":"x","exp":9999999999,"scope":"orders:write"}`), 401, "algorithm not allowed"},
		{"HS256 keyed with the RSA public key PEM", sign(t, "HS256", []byte(rsaPEM), claimsAt(now, scoped), ""), 401, "invalid signature"},
		{"algorithm outside the allow-list", sign(t, "ES256", k.p256, claimsAt(now, scoped), ""), 401, "algorithm not allowed"},
		{"unknown algorithm", enc([]byte(`{"alg":"XX256"}`)) + "." + parts[1] + "." + parts[2], 401, "algorithm not allowed"},
		{"expired", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"exp": now.Add(-time.Minute).Unix(), "scope": "orders:write"}), ""), 401, "token expired"},
		{"expired within leeway", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"exp": now.Add(-10 * time.Second).Unix(), "scope": "orders:write"}), ""), 200, ""},
		{"not yet valid", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"nbf": now.Add(time.Minute).Unix(), "scope": "orders:write"}), ""), 401, "token not yet valid"},
		{"issued in the future", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"iat": now.Add(time.Hour).Unix(), "scope": "orders:write"}), ""), 401, "token issued in the future"},
		{"no exp", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"exp": nil, "scope": "orders:write"}), ""), 401, "token has no expiry"},
		{"wrong issuer", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"iss": "https://evil.test", "scope": "orders:write"}), ""), 401, "wrong issuer"},
		{"wrong audience", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"aud": []string{"billing"}, "scope": "orders:write"}), ""), 401, "wrong audience"},
		{"missing scope", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"scope": "orders:read"}), ""), 403, ""},
		{"two segments", parts[0] + "." + parts[1], 401, "malformed token"},
		{"bad base64", parts[0] + ".!!!." + parts[2], 401, "malformed token"},
		{"bad JSON", parts[0] + "." + enc([]byte(`{"sub":`)) + "." + parts[2], 401, "malformed token"},
		{"100 KB token", parts[0] + "." + strings.Repeat("A", 100<<10) + "." + parts[2], 401, "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := g.do(t, tt.token)
			if res.status != tt.status {
				t.Fatalf("got status %d (%s), want %d", res.status, res.challenge, tt.status)
			}
			switch tt.status {
			case 401:
				want := `Bearer realm="portico", error="invalid_token", error_description="` + tt.desc + `"`
				if res.challenge != want {
					t.Errorf("got challenge %q, want %q", res.challenge, want)
				}
			case 403:
				want := `Bearer realm="portico", error="insufficient_scope", error_description="required scope missing", scope="orders:write"`
				if res.challenge != want {
					t.Errorf("got challenge %q, want %q", res.challenge, want)
				}
			}
			if tt.status != 200 && strings.Contains(res.body, tt.token[:20]) {
				t.Errorf("got body %q echoing the token", res.body)
			}
		})
	}
	if got, want := g.up.hits.Load()-before, int64(1); got != want {
		t.Errorf("got %d requests upstream from the bad tokens, want %d (only the leeway one)", got, want)
	}
}

func TestMissingToken(t *testing.T) {
	k := tk(t)
	g := newGateway(t, decodeSpec(t, "{algorithms: [HS256], secret: "+string(k.hmac)+"}"), nil, time.Now)
	for _, auth := range []string{"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"} {
		req, _ := http.NewRequest("GET", g.url+"/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res := g.send(t, req)
		if res.status != 401 || res.challenge != `Bearer realm="portico"` {
			t.Errorf("Authorization %q: got %d %q, want 401 %q", auth, res.status, res.challenge, `Bearer realm="portico"`)
		}
	}
	// The scheme is case-insensitive.
	req, _ := http.NewRequest("GET", g.url+"/", nil)
	req.Header.Set("Authorization", "bEaReR "+sign(t, "HS256", k.hmac, claimsAt(time.Now(), nil), ""))
	if res := g.send(t, req); res.status != 200 {
		t.Errorf("got %d for a lower-case bearer scheme, want 200", res.status)
	}
	if g.up.hits.Load() != 1 {
		t.Errorf("got %d upstream hits, want 1", g.up.hits.Load())
	}
}

func TestRequiredClaimsContain(t *testing.T) {
	k := tk(t)
	now := time.Now()
	spec := decodeSpec(t, "algorithms: [HS256]\nsecret: "+string(k.hmac)+"\nrequired_claims: {scope: orders:write, roles: admin, tenant: acme, admin: true}\n")
	g := newGateway(t, spec, nil, time.Now)
	base := jwtlib.MapClaims{"scope": "orders:read orders:write", "roles": []string{"user", "admin"}, "tenant": "acme", "admin": true}
	tests := []struct {
		name   string
		change jwtlib.MapClaims
		want   int
	}{
		{"all present", nil, 200},
		{"scope as array", jwtlib.MapClaims{"scope": []string{"orders:write"}}, 200},
		{"scope prefix only", jwtlib.MapClaims{"scope": "orders:writer"}, 403},
		{"role missing", jwtlib.MapClaims{"roles": []string{"user"}}, 403},
		{"tenant differs", jwtlib.MapClaims{"tenant": "acme2"}, 403},
		{"tenant absent", jwtlib.MapClaims{"tenant": nil}, 403},
		{"admin false", jwtlib.MapClaims{"admin": false}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsAt(now, base)
			for k, v := range tt.change {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			res := g.do(t, sign(t, "HS256", k.hmac, c, ""))
			if res.status != tt.want {
				t.Fatalf("got %d (%s), want %d", res.status, res.challenge, tt.want)
			}
			if tt.want == 403 && !strings.Contains(res.challenge, `error="insufficient_scope"`) {
				t.Errorf("got challenge %q, want insufficient_scope", res.challenge)
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	k := tk(t)
	clk := newFakeClock()
	g := newGateway(t, decodeSpec(t, "{algorithms: [HS256], secret: "+string(k.hmac)+", max_age: 10m}"), nil, clk.Now)
	tests := []struct {
		name string
		iat  any
		want int
	}{
		{"fresh", clk.Now().Add(-time.Minute).Unix(), 200},
		{"too old", clk.Now().Add(-11 * time.Minute).Unix(), 401},
		{"no iat", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsAt(clk.Now(), jwtlib.MapClaims{"iat": tt.iat})
			if res := g.do(t, sign(t, "HS256", k.hmac, c, "")); res.status != tt.want {
				t.Errorf("got %d (%s), want %d", res.status, res.challenge, tt.want)
			}
		})
	}
}

func TestConsumerCredentials(t *testing.T) {
	k := tk(t)
	reg, err := consumer.New([]config.Consumer{
		{Name: "mobile", Credentials: config.Credentials{JWT: []config.JWTCredential{
			{Key: "mobile-app", Algorithm: "HS256", Secret: config.Secret(k.hmac)}}}},
		{Name: "partner", Credentials: config.Credentials{JWT: []config.JWTCredential{
			{Key: "partner-co", Algorithm: "RS256", PublicKey: pubPEM(t, &k.rsa.PublicKey)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := decodeSpec(t, "{algorithms: [HS256, RS256], consumer_credentials: true}")
	g := newGateway(t, spec, &pipeline.BuildEnv{Consumers: reg}, time.Now)
	now := time.Now()
	tests := []struct {
		name         string
		token        string
		want         int
		wantConsumer string
	}{
		{"HS256 consumer", sign(t, "HS256", k.hmac, claimsAt(now, jwtlib.MapClaims{"iss": "mobile-app"}), ""), 200, "mobile"},
		{"RS256 consumer", sign(t, "RS256", k.rsa, claimsAt(now, jwtlib.MapClaims{"iss": "partner-co"}), ""), 200, "partner"},
		{"other consumer's key", sign(t, "HS256", k.hmac2, claimsAt(now, jwtlib.MapClaims{"iss": "mobile-app"}), ""), 401, ""},
		{"algorithm not the credential's", sign(t, "HS256", k.hmac, claimsAt(now, jwtlib.MapClaims{"iss": "partner-co"}), ""), 401, ""},
		{"unknown key claim", sign(t, "HS256", k.hmac, claimsAt(now, jwtlib.MapClaims{"iss": "nobody"}), ""), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := g.do(t, tt.token)
			if res.status != tt.want {
				t.Fatalf("got %d (%s), want %d", res.status, res.challenge, tt.want)
			}
			if tt.want == 200 {
				if got := g.up.lastRequest().Header.Get("X-Consumer-Name"); got != tt.wantConsumer {
					t.Errorf("got consumer %q, want %q", got, tt.wantConsumer)
				}
			}
		})
	}
}

func TestTokenSourcesAndHideCredentials(t *testing.T) {
	k := tk(t)
	tok := sign(t, "HS256", k.hmac, claimsAt(time.Now(), nil), "")
	tests := []struct {
		name    string
		spec    string
		prepare func(r *http.Request)
		check   func(t *testing.T, up *http.Request)
	}{
		{"cookie kept", "cookie: session", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "session", Value: tok})
			r.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
		}, func(t *testing.T, up *http.Request) {
			if c, err := up.Cookie("session"); err != nil || c.Value != tok {
				t.Errorf("got no session cookie upstream, want it kept")
			}
		}},
		{"cookie hidden", "cookie: session\nhide_credentials: true", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "session", Value: tok})
			r.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
		}, func(t *testing.T, up *http.Request) {
			if _, err := up.Cookie("session"); err == nil {
				t.Errorf("got the session cookie upstream, want it removed")
			}
			if c, err := up.Cookie("theme"); err != nil || c.Value != "dark" {
				t.Errorf("got theme cookie missing, want it kept")
			}
		}},
		{"query hidden", "query: access_token\nhide_credentials: true", func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + tok + "&page=2"
		}, func(t *testing.T, up *http.Request) {
			if got := up.URL.RawQuery; got != "page=2" {
				t.Errorf("got query %q upstream, want page=2", got)
			}
		}},
		{"query kept", "query: access_token", func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + tok
		}, func(t *testing.T, up *http.Request) {
			if got := up.URL.Query().Get("access_token"); got != tok {
				t.Errorf("got access_token %q upstream, want the token", got)
			}
		}},
		{"header hidden", "hide_credentials: true", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
		}, func(t *testing.T, up *http.Request) {
			if got := up.Header.Get("Authorization"); got != "" {
				t.Errorf("got Authorization %q upstream, want none", got)
			}
		}},
		{"custom header without scheme", "header: X-Token", func(r *http.Request) {
			r.Header.Set("X-Token", tok)
		}, func(t *testing.T, up *http.Request) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, decodeSpec(t, "algorithms: [HS256]\nsecret: "+string(k.hmac)+"\n"+tt.spec+"\n"), nil, time.Now)
			req, _ := http.NewRequest("GET", g.url+"/x", nil)
			tt.prepare(req)
			if res := g.send(t, req); res.status != 200 {
				t.Fatalf("got %d (%s), want 200", res.status, res.challenge)
			}
			tt.check(t, g.up.lastRequest())
			// Without the token the source reports a missing credential.
			empty, _ := http.NewRequest("GET", g.url+"/x", nil)
			if res := g.send(t, empty); res.status != 401 || res.challenge != `Bearer realm="portico"` {
				t.Errorf("got %d %q without a token, want 401 without error=", res.status, res.challenge)
			}
		})
	}
}

func TestClaimsToHeaders(t *testing.T) {
	k := tk(t)
	spec := decodeSpec(t, "algorithms: [HS256]\nsecret: "+string(k.hmac)+"\n"+
		"claims_to_headers: {email: x-user-email, groups: X-User-Groups, level: X-Level, vip: X-Vip, evil: X-Evil, obj: X-Obj}\n")
	if got, want := strings.Join(identityHeaders(spec), ","), "X-Evil,X-Level,X-Obj,X-User-Email,X-User-Groups,X-Vip"; got != want {
		t.Errorf("got identity headers %s, want %s", got, want)
	}
	g := newGateway(t, spec, nil, time.Now)
	tok := sign(t, "HS256", k.hmac, claimsAt(time.Now(), jwtlib.MapClaims{
		"email": "a@example.com", "groups": []string{"admins", "ops"}, "level": 3, "vip": true,
		"evil": "x\r\nX-Injected: 1", "obj": map[string]any{"a": 1}}), "")
	req, _ := http.NewRequest("GET", g.url+"/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Obj", "client-forged")
	if res := g.send(t, req); res.status != 200 {
		t.Fatalf("got %d, want 200", res.status)
	}
	up := g.up.lastRequest()
	want := map[string]string{"X-User-Email": "a@example.com", "X-User-Groups": "admins,ops",
		"X-Level": "3", "X-Vip": "true", "X-Evil": "", "X-Obj": "", "X-Injected": ""}
	for h, w := range want {
		if got := up.Header.Get(h); got != w {
			t.Errorf("got %s %q, want %q", h, got, w)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	k := tk(t)
	tests := []struct {
		name    string
		src     string
		wantErr string
	}{
		{"hmac ok", "{algorithms: [HS256], secret: " + string(k.hmac) + "}", ""},
		{"jwks loopback http ok", "{algorithms: [RS256], jwks_url: 'http://127.0.0.1:9/keys'}", ""},
		{"discovery ok", "{algorithms: [ES256], issuer_discovery: 'https://idp.example', issuer: [a, b]}", ""},
		{"no algorithms", "{secret: " + string(k.hmac) + "}", "algorithms: is required"},
		{"none refused", "{algorithms: [none], secret: " + string(k.hmac) + "}", "never accepted"},
		{"unknown alg", "{algorithms: [HS257], secret: " + string(k.hmac) + "}", "unknown algorithm"},
		{"no key source", "{algorithms: [HS256]}", "needs a key source"},
		{"short secret", "{algorithms: [HS256], secret: short}", "at least 32 bytes"},
		{"secret without HS", "{algorithms: [RS256], secret: " + string(k.hmac) + "}", "needs an HS256"},
		{"jwks plain http", "{algorithms: [RS256], jwks_url: 'http://idp.example/keys'}", "must be an https URL"},
		{"jwks with only HS", "{algorithms: [HS256], jwks_url: 'https://idp.example/keys'}", "need an RS*"},
		{"bad public key", "{algorithms: [RS256], public_key: nope}", "must be a PEM"},
		{"refresh too short", "{algorithms: [RS256], jwks_url: 'https://i/k', jwks_refresh: 10s}", "at least 1m"},
		{"issuer map", "{algorithms: [RS256], jwks_url: 'https://i/k', issuer: {a: b}}", "string or a list"},
		{"bad header", "{algorithms: [HS256], secret: " + string(k.hmac) + ", claims_to_headers: {email: 'X Bad'}}", "valid header name"},
		{"cookie and query", "{algorithms: [HS256], secret: " + string(k.hmac) + ", cookie: a, query: b}", "at most one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tryDecodeSpec(tt.src)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %q, want no error", err.Error())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), string(k.hmac)):
				t.Errorf("got %q, which echoes the secret", err.Error())
			}
		})
	}
}

// FuzzAuthenticate checks that no Authorization value makes the plugin
// panic or admit a request.
func FuzzAuthenticate(f *testing.F) {
	k := tk(f)
	spec := decodeSpec(f, "{algorithms: [HS256], secret: "+string(k.hmac)+"}")
	v, err := newVerifier(spec, &pipeline.BuildEnv{}, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer " + noneToken(`{"sub":"x"}`))
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Fuzz(func(t *testing.T, auth string) {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		r.Header["Authorization"] = []string{auth}
		ex := &pipeline.Exchange{}
		v.authenticate(r, ex)
		if ex.Auth.Passed != 0 {
			t.Fatalf("got a forged token %q admitted", auth)
		}
	})
}

func TestRegistrationBuildsInAChain(t *testing.T) {
	k := tk(t)
	reg := Registration()
	if reg.Name != "jwt" || reg.Phase != pipeline.PhaseAuthenticate {
		t.Fatalf("got %s at phase %d, want jwt at %d", reg.Name, reg.Phase, pipeline.PhaseAuthenticate)
	}
	spec := decodeSpec(t, "{algorithms: [HS256], secret: "+string(k.hmac)+"}")
	var got *pipeline.Exchange
	h, err := pipeline.Chain([]pipeline.Configured{{Reg: &reg, Spec: spec}}, pipeline.BuildEnv{},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = pipeline.FromContext(r.Context()) }))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.Header.Set("Authorization", "Bearer "+sign(t, "HS256", k.hmac, claimsAt(time.Now(), nil), ""))
	ex := &pipeline.Exchange{}
	h.ServeHTTP(nil, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	if got != ex || ex.Auth.Passed != 1 || ex.Subject != "user-1" || ex.Claims["aud"] != "orders" {
		t.Errorf("got passed=%d subject=%q, want 1 and user-1 on the request's exchange", ex.Auth.Passed, ex.Subject)
	}
}

// TestMoreThanOneTokenRefused: two tokens where the plugin looks (two
// lines of its header, its cookie twice, its query parameter twice) get
// 400 and never reach the upstream, even when one of them is valid.
func TestMoreThanOneTokenRefused(t *testing.T) {
	k := tk(t)
	good := sign(t, "HS256", k.hmac, claimsAt(time.Now(), nil), "")
	base := "algorithms: [HS256]\nissuer: https://idp.test\naudience: [orders]\nsecret: " + string(k.hmac) + "\n"
	tests := []struct {
		name, spec string
		mutate     func(r *http.Request)
	}{
		{"custom header twice", "header: X-Token\n", func(r *http.Request) { r.Header["X-Token"] = []string{good, "forged"} }},
		{"Bearer twice", "", func(r *http.Request) { r.Header["Authorization"] = []string{"Bearer " + good, "Bearer x"} }},
		{"cookie twice", "cookie: jwt\n", func(r *http.Request) { r.Header.Set("Cookie", "jwt="+good+"; a=1; jwt=forged") }},
		{"query twice", "query: token\n", func(r *http.Request) { r.URL.RawQuery = "token=" + good + "&token=forged" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, decodeSpec(t, base+tt.spec), nil, time.Now)
			req, _ := http.NewRequest("GET", g.url+"/api", nil)
			tt.mutate(req)
			res := g.send(t, req)
			if res.status != http.StatusBadRequest || !strings.Contains(res.body, "more than one token") {
				t.Errorf("got %d %s, want 400 naming more than one token", res.status, res.body)
			}
			if n := g.up.hits.Load(); n != 0 {
				t.Errorf("got %d requests upstream, want none", n)
			}
		})
	}
}

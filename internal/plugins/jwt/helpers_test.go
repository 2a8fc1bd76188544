package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// testKeys are generated once for the package.
type testKeys struct {
	rsa, rsa2   *rsa.PrivateKey
	p256, p384  *ecdsa.PrivateKey
	p521        *ecdsa.PrivateKey
	ed          ed25519.PrivateKey
	hmac, hmac2 []byte
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func tk(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keys.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keys.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		keys.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		_, keys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		keys.hmac = []byte("0123456789abcdef0123456789abcdef-hmac-secret")
		keys.hmac2 = []byte("another-secret-of-at-least-32-bytes-long!!")
	})
	return &keys
}

func pubPEM(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign makes a token. kid is set in the header when not empty.
func sign(t testing.TB, alg string, key any, claims jwtlib.MapClaims, kid string) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %s", alg, err.Error())
	}
	return s
}

// claimsAt returns ordinary valid claims relative to now.
func claimsAt(now time.Time, extra jwtlib.MapClaims) jwtlib.MapClaims {
	c := jwtlib.MapClaims{"iss": "https://idp.test", "sub": "user-1", "aud": "orders",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf renders a public key as a JWK.
func jwkOf(pub crypto.PublicKey, kid, alg string) map[string]string {
	m := map[string]string{"kid": kid}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64u(k.N.Bytes()), b64u([]byte{1, 0, 1})
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, _ := k.Bytes()
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64u(raw[1:1+size]), b64u(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64u(k)
	}
	return m
}

// jwksServer serves a key set that tests may change, and counts requests.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []map[string]string
	cacheControl string
	fail         bool
	hits         atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]string) *jwksServer {
	js := &jwksServer{keys: keys}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.hits.Add(1)
		js.mu.Lock()
		defer js.mu.Unlock()
		if js.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if js.cacheControl != "" {
			w.Header().Set("Cache-Control", js.cacheControl)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(keys ...map[string]string) {
	js.mu.Lock()
	js.keys = keys
	js.mu.Unlock()
}

// fakeClock is an injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// decodeSpec decodes YAML settings over the defaults, as the gateway does,
// and validates them.
func decodeSpec(t testing.TB, src string) *Spec {
	t.Helper()
	s, err := tryDecodeSpec(src)
	if err != nil {
		t.Fatalf("spec: %s", err.Error())
	}
	return s
}

func tryDecodeSpec(src string) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return nil, err
	}
	s := defaultSpec()
	p := config.Path{}.Key("plugins").Key("jwt")
	if err := (&config.Config{}).DecodeNode(doc.Content[0], p, s); err != nil {
		return nil, err
	}
	return s, s.Validate(p)
}

// upstream records what reached it.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
}

func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// gateway is a real edge → jwt → minimal gate → proxy → upstream.
type gateway struct {
	url string
	up  *upstream
	v   *verifier
}

func newGateway(t testing.TB, spec *Spec, env *pipeline.BuildEnv, now func() time.Time) *gateway {
	t.Helper()
	if env == nil {
		env = &pipeline.BuildEnv{}
	}
	v, err := newVerifier(spec, env, now)
	if err != nil {
		t.Fatalf("build: %s", err.Error())
	}
	up := &upstream{}
	up.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.hits.Add(1)
		up.mu.Lock()
		up.last = r.Clone(r.Context())
		up.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	// The gate: a stand-in for the auth plugin, enough for these tests.
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex.Auth.Passed == 0 {
			f := ex.Auth.Failure
			if f.Challenge != "" {
				w.Header().Set("WWW-Authenticate", f.Challenge)
			}
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			problem.Write(w, r, f.Status, "", f.Detail)
			return
		}
		if ex.Consumer != nil {
			r.Header.Set("X-Consumer-Name", ex.Consumer.Name)
		}
		r.Header.Set("X-User-ID", ex.Subject)
		r.Header.Set("X-Credential", ex.Credential)
		proxy.ServeHTTP(w, r)
	})
	h := v.middleware(gate)
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{Start: time.Now(), RequestID: "req-1"}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(edge.Close)
	return &gateway{url: edge.URL, up: up, v: v}
}

type result struct {
	status     int
	challenge  string
	body       string
	retryAfter string
}

// do sends a GET with the token in Authorization (when not empty).
func (g *gateway) do(t testing.TB, token string) result {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url+"/api", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return g.send(t, req)
}

func (g *gateway) send(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %s", err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b), resp.Header.Get("Retry-After")}
}

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

// keyServer is an identity provider in the test process: it serves a JSON
// Web Key Set at /jwks.json and an OpenID Connect discovery document at
// /.well-known/openid-configuration, and counts key set fetches.
type keyServer struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu   sync.Mutex
	keys []map[string]string
}

func newKeyServer(t *testing.T) *keyServer {
	t.Helper()
	ks := &keyServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		body, _ := json.Marshal(map[string]any{"keys": ks.keys})
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":   ks.srv.URL,
			"jwks_uri": ks.srv.URL + "/jwks.json",
		})
	})
	ks.srv = httptest.NewServer(mux)
	t.Cleanup(ks.srv.Close)
	return ks
}

// URL is the server's base URL (the issuer for discovery).
func (ks *keyServer) URL() string { return ks.srv.URL }

// add publishes one more public key.
func (ks *keyServer) add(jwk map[string]string) {
	ks.mu.Lock()
	ks.keys = append(ks.keys, jwk)
	ks.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK is the JWK of an RSA public key.
func rsaJWK(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

// ecJWK is the JWK of a P-256 public key.
func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey) map[string]string {
	t.Helper()
	k, err := pub.ECDH()
	if err != nil {
		t.Fatalf("ECDH: %s", err)
	}
	pt := k.Bytes() // 0x04 || X || Y
	return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": b64(pt[1:33]), "y": b64(pt[33:])}
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %s", err)
	}
	return k
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate EC key: %s", err)
	}
	return k
}

// signToken signs claims (plus exp and iat, one hour) with key under kid.
func signToken(t *testing.T, m jwtlib.SigningMethod, key crypto.Signer, kid string, claims jwtlib.MapClaims) string {
	t.Helper()
	all := jwtlib.MapClaims{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		all[k] = v
	}
	tok := jwtlib.NewWithClaims(m, all)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %s", err)
	}
	return s
}

// introspector is an RFC 7662 endpoint in the test process: token "good"
// is active, anything else inactive; it requires client_secret_basic
// credentials and counts calls.
type introspector struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newIntrospector(t *testing.T, clientID, secret string) *introspector {
	t.Helper()
	in := &introspector{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.calls.Add(1)
		id, sec, ok := r.BasicAuth()
		if !ok || id != clientID || sec != secret || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.PostFormValue("token") != "good" {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "user-7",
			"client_id": "app", "exp": time.Now().Add(time.Hour).Unix()})
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// checkNotForwarded fails the test when any of the request ids reached up.
func checkNotForwarded(t *testing.T, up *upstream, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, ok := up.byID(id); ok {
			t.Errorf("request %s was refused but reached the upstream", id)
		}
	}
}

// upstreamHeader returns header name of the request the upstream received
// with X-Request-ID id, failing the test when there is none.
func upstreamHeader(t *testing.T, up *upstream, id, name string) string {
	t.Helper()
	s, ok := up.byID(id)
	if !ok {
		t.Fatalf("upstream did not receive request %s", id)
	}
	return s.Header.Get(name)
}

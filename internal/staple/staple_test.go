package staple

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// pki is a CA, a leaf it issued that names an OCSP responder, and that
// responder, whose answers the test chooses.
type pki struct {
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
	cert   *tls.Certificate
	leaf   *x509.Certificate
	server *httptest.Server

	mu     sync.Mutex
	answer func(req *ocsp.Request) (status int, body []byte)
	hits   int
}

func newPKI(t *testing.T, ocspURL bool) *pki {
	t.Helper()
	p := &pki{}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(b)
		if err != nil {
			http.Error(w, "bad request", 400)
			return
		}
		p.mu.Lock()
		p.hits++
		answer := p.answer
		p.mu.Unlock()
		status, body := answer(req)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.server.Close)
	var err error
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &p.caKey.PublicKey, p.caKey)
	p.ca, _ = x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "a.test"},
		DNSNames: []string{"a.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	if ocspURL {
		leafTmpl.OCSPServer = []string{p.server.URL}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, p.ca, &leafKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(leafDER)
	p.cert = &tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey, Leaf: p.leaf}
	return p
}

// respond makes the responder answer with a response of status valid
// from thisUpdate for validity, signed by signer (the CA's key when nil).
func (p *pki) respond(status int, thisUpdate time.Time, validity time.Duration, signer crypto.Signer) []byte {
	if signer == nil {
		signer = p.caKey
	}
	der, err := ocsp.CreateResponse(p.ca, p.ca, ocsp.Response{Status: status, SerialNumber: p.leaf.SerialNumber,
		ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(validity), RevokedAt: thisUpdate}, signer)
	if err != nil {
		panic(err)
	}
	return der
}

func (p *pki) set(status int, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = func(*ocsp.Request) (int, []byte) { return status, body }
}

func TestNewNeedsResponderAndIssuer(t *testing.T) {
	t.Parallel()
	if s := New(newPKI(t, false).cert); s != nil {
		t.Errorf("leaf without OCSP server: got a state, want nil")
	}
	p := newPKI(t, true)
	alone := *p.cert
	alone.Certificate = alone.Certificate[:1]
	if s := New(&alone); s != nil {
		t.Errorf("chain without issuer: got a state, want nil")
	}
	if s := New(p.cert); s == nil || s.Responder() != p.server.URL {
		t.Errorf("got %v, want a state for %s", s, p.server.URL)
	}
}

// TestStapleLifecycle follows one certificate: a good response is
// stapled and refreshed halfway to its NextUpdate; a failed refresh keeps
// the last good response until it expires, and backs off; a response
// that does not verify, or says revoked, is never stapled.
func TestStapleLifecycle(t *testing.T) {
	t.Parallel()
	p := newPKI(t, true)
	s := New(p.cert)
	ctx, hc := context.Background(), p.server.Client()
	now := time.Now().Truncate(time.Second)

	good := p.respond(ocsp.Good, now, 4*time.Hour, nil)
	p.set(200, good)
	if err := s.Refresh(ctx, hc, now); err != nil {
		t.Fatalf("refresh: %s", err)
	}
	if got := s.Stapled(now).OCSPStaple; string(got) != string(good) {
		t.Fatalf("after a good response: staple %d bytes, want the response", len(got))
	}
	if got, want := s.Next(), now.Add(2*time.Hour); !got.Equal(want) {
		t.Errorf("next refresh: got %s, want halfway %s", got, want)
	}

	// The responder fails: the good response stays, the retry backs off.
	p.set(500, nil)
	at := now.Add(2 * time.Hour)
	if err := s.Refresh(ctx, hc, at); err == nil {
		t.Fatal("refresh against a failing responder: got nil error")
	}
	if got := s.Stapled(at).OCSPStaple; string(got) != string(good) {
		t.Errorf("after a failed refresh: lost the last good staple")
	}
	if got, want := s.Next(), at.Add(time.Minute); !got.Equal(want) {
		t.Errorf("retry after one failure: got %s, want %s", got, want)
	}
	_ = s.Refresh(ctx, hc, at.Add(time.Minute))
	if got, want := s.Next(), at.Add(3*time.Minute); !got.Equal(want) {
		t.Errorf("retry after two failures: got %s, want %s (doubled)", got, want)
	}
	// Past NextUpdate the expired response is no longer stapled, and the
	// refresh is due no later than that.
	expired := now.Add(4 * time.Hour)
	if got := s.Stapled(expired).OCSPStaple; got != nil {
		t.Errorf("past NextUpdate: still stapled")
	}

	// A response signed by another key never verifies.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.set(200, p.respond(ocsp.Good, expired, 4*time.Hour, other))
	if err := s.Refresh(ctx, hc, expired); err == nil {
		t.Error("response signed by another key: got nil error")
	}
	if got := s.Stapled(expired).OCSPStaple; got != nil {
		t.Errorf("response signed by another key: stapled")
	}
	// An expired response is not stapled either.
	p.set(200, p.respond(ocsp.Good, expired.Add(-2*time.Hour), time.Hour, nil))
	if err := s.Refresh(ctx, hc, expired); err == nil {
		t.Error("expired response: got nil error")
	}

	// Good again, then revoked: the staple goes at once.
	p.set(200, p.respond(ocsp.Good, expired, 4*time.Hour, nil))
	if err := s.Refresh(ctx, hc, expired); err != nil || s.Stapled(expired).OCSPStaple == nil {
		t.Fatalf("good response: err %v, stapled %v", err, s.Stapled(expired).OCSPStaple != nil)
	}
	p.set(200, p.respond(ocsp.Revoked, expired, 4*time.Hour, nil))
	if err := s.Refresh(ctx, hc, expired); err == nil || s.Stapled(expired).OCSPStaple != nil {
		t.Errorf("revoked response: err %v, stapled %v; want an error and no staple", err, s.Stapled(expired).OCSPStaple != nil)
	}
}

// TestAdoptKeepsStapleOfSameCertificate: a certificate loaded again
// keeps the staple of the old load; another certificate does not.
func TestAdoptKeepsStapleOfSameCertificate(t *testing.T) {
	t.Parallel()
	p := newPKI(t, true)
	now := time.Now()
	p.set(200, p.respond(ocsp.Good, now, time.Hour, nil))
	old := New(p.cert)
	if err := old.Refresh(context.Background(), p.server.Client(), now); err != nil {
		t.Fatal(err)
	}
	again := *p.cert
	s := New(&again)
	if !s.Adopt(old) || s.Stapled(now).OCSPStaple == nil {
		t.Errorf("same certificate: not adopted")
	}
	if New(newPKI(t, true).cert).Adopt(old) {
		t.Errorf("another certificate: adopted")
	}
}

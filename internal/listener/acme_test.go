package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// challenger answers one HTTP-01 token and one TLS-ALPN-01 name.
type challenger struct{ cert *tls.Certificate }

func (c *challenger) ServeHTTP01(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != challengePath+"tok" {
		return false
	}
	_, _ = io.WriteString(w, "tok.key")
	return true
}

func (c *challenger) TLSALPN01(name string) (*tls.Certificate, error) {
	if name != "a.example.com" {
		return nil, errors.New("no challenge")
	}
	return c.cert, nil
}

func serve(t *testing.T, o Options) *Listener {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestTLSALPN01HandshakeNeverReachesARoute: a client that offers only
// acme-tls/1 gets the challenge certificate for a pending name, a
// failed handshake for another, and its connection ends with the
// handshake; other clients get the listener's certificate.
func TestTLSALPN01HandshakeNeverReachesARoute(t *testing.T) {
	dir := t.TempDir()
	files := writeCert(t, dir, "site", "a.example.com")
	chal := writeCert(t, dir, "chal", "a.example.com")
	chalCert, _ := tls.LoadX509KeyPair(chal.CertFile, chal.KeyFile)
	var routed atomic.Int32
	l := serve(t, Options{
		Config:     config.Listener{Name: "secure", Listen: "127.0.0.1:0", TLS: &config.TLS{Certificates: []config.CertificateFiles{files}, MinVersion: "1.2"}},
		Handler:    http.HandlerFunc(func(http.ResponseWriter, *http.Request) { routed.Add(1) }),
		Challenges: &challenger{cert: &chalCert},
	})
	dial := func(sni string, protos ...string) (*tls.Conn, error) {
		return tls.Dial("tcp", l.Addr(), &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
	}
	c, err := dial("a.example.com", "acme-tls/1")
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: %s", err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "acme-tls/1" || string(st.PeerCertificates[0].Raw) != string(chalCert.Certificate[0]) {
		t.Errorf("got protocol %q and another certificate, want acme-tls/1 and the challenge certificate", st.NegotiatedProtocol)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 || routed.Load() != 0 {
		t.Errorf("after the handshake: read %q, %d requests routed; want the connection closed", b, routed.Load())
	}
	c.Close()
	if c, err := dial("b.example.com", "acme-tls/1"); err == nil {
		c.Close()
		t.Errorf("acme-tls/1 for a name without a challenge: handshake succeeded")
	}
	c, err = dial("a.example.com", "h2", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.ConnectionState().PeerCertificates[0].Raw) == string(chalCert.Certificate[0]) {
		t.Errorf("an ordinary client got the challenge certificate")
	}
	c.Close()
}

// TestHTTP01BeforeRedirect: a redirect_to_https listener answers a known
// challenge token itself, and redirects nothing under the challenge path.
func TestHTTP01BeforeRedirect(t *testing.T) {
	var routed atomic.Int32
	l := serve(t, Options{
		Config:     config.Listener{Name: "web", Listen: "127.0.0.1:0", RedirectToHTTPS: true},
		HTTPSPort:  443,
		Handler:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { routed.Add(1); w.WriteHeader(404) }),
		Challenges: &challenger{},
	})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		path, body string
		status     int
	}{{challengePath + "tok", "tok.key", 200}, {challengePath + "other", "", 404}, {"/x", "", 308}} {
		resp, err := c.Get("http://" + l.Addr() + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) {
			t.Errorf("%s: got %d %q, want %d %q", tt.path, resp.StatusCode, b, tt.status, tt.body)
		}
	}
	if routed.Load() != 1 {
		t.Errorf("routed %d requests, want 1 (the unknown token)", routed.Load())
	}
}

// TestTLSALPN01OnAListenerRequiringClientCertificates: the ACME server's
// validation carries no client certificate, and a listener that requires
// them still completes it, over TLS 1.2 as well (where the refusal would
// come inside the handshake); an ordinary client without a certificate
// is refused.
func TestTLSALPN01OnAListenerRequiringClientCertificates(t *testing.T) {
	dir := t.TempDir()
	files := writeCert(t, dir, "site", "a.example.com")
	chal := writeCert(t, dir, "chal", "a.example.com")
	chalCert, _ := tls.LoadX509KeyPair(chal.CertFile, chal.KeyFile)
	l := serve(t, Options{
		Config: config.Listener{Name: "secure", Listen: "127.0.0.1:0", TLS: &config.TLS{
			Certificates: []config.CertificateFiles{files}, MinVersion: "1.2",
			ClientAuth: &config.ClientAuth{CAFiles: []string{files.CertFile}}}},
		Handler:    http.NotFoundHandler(),
		Challenges: &challenger{cert: &chalCert},
	})
	dial := func(protos ...string) error {
		c, err := tls.Dial("tcp", l.Addr(), &tls.Config{ServerName: "a.example.com", NextProtos: protos,
			InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("acme-tls/1"); err != nil {
		t.Errorf("acme-tls/1 without a client certificate: %s, want the handshake to succeed", err)
	}
	if err := dial("h2", "http/1.1"); err == nil {
		t.Errorf("an ordinary client without a certificate: handshake succeeded, want it refused")
	}
}

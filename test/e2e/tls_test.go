package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a fresh ECDSA certificate for 127.0.0.1 and localhost
// into dir and returns the file names and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "portico e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// TestTLS serves HTTPS from a certificate made at test time: HTTP/2 by
// ALPN, HTTP/1.1 when the client asks for it, no TLS 1.1, and the upstream
// is told the client used https.
func TestTLS(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	g := startGateway(t, base+fmt.Sprintf(`tls: {cert_file: %q, key_file: %q}
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, certFile, keyFile, up.URL()))
	url := "https://" + g.addr + "/tls"

	client := func(t *testing.T, protos func(*http.Protocols)) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		tr.Protocols = new(http.Protocols)
		protos(tr.Protocols)
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	tests := []struct {
		name   string
		protos func(*http.Protocols)
		major  int
	}{
		{"HTTP/2", func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }, 2},
		{"HTTP/1.1", func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := "tls-" + tt.name[5:]
			resp, body := get(t, client(t, tt.protos), url, "X-Request-ID", id)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200; body %s", resp.StatusCode, body)
			}
			if resp.ProtoMajor != tt.major {
				t.Errorf("protocol: got %s, want HTTP/%d", resp.Proto, tt.major)
			}
			s, ok := up.byID(id)
			if !ok {
				t.Fatal("upstream did not receive the request")
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != "https" {
				t.Errorf("X-Forwarded-Proto upstream: got %q, want https", got)
			}
		})
	}
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		t.Parallel()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.addr, &tls.Config{
			RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
		})
		if err == nil {
			v := conn.ConnectionState().Version
			conn.Close()
			t.Fatalf("handshake with TLS 1.1 at most succeeded (version %x), want it refused", v)
		}
	})
	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		t.Parallel()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + g.addr + "/tls")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("plain HTTP on the TLS listener: got 200, want it refused")
			}
		}
	})
}

// TestH2CPriorKnowledge checks cleartext HTTP/2 with h2c: true.
func TestH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`h2c: true
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, up.URL()))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, body := get(t, c, g.URL("/h2c"), "X-Request-ID", "h2c-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol: got %s, want HTTP/2", resp.Proto)
	}
	if _, ok := up.byID("h2c-1"); !ok {
		t.Error("upstream did not receive the request")
	}
	// HTTP/1.1 keeps working on the same listener.
	resp, _ = get(t, newClient(t), g.URL("/h1"))
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1 on the h2c listener: got %d %s, want 200 HTTP/1.1", resp.StatusCode, resp.Proto)
	}
}

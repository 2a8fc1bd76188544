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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certFor writes a self-signed certificate for names into dir (files
// named after base) and adds it to roots.
func certFor(t *testing.T, dir, base string, roots *x509.CertPool, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots.AddCert(cert)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLSEdge runs a gateway with a plain listener that redirects to
// HTTPS, a TLS listener with two certificates chosen by SNI, and an
// internal plain listener with a route of its own.
func TestTLSEdge(t *testing.T) {
	t.Parallel()
	up, internal := newUpstream(t, "app", nil), newUpstream(t, "internal", nil)
	dir, roots := t.TempDir(), x509.NewCertPool()
	aCert, aKey := certFor(t, dir, "a", roots, "a.test")
	bCert, bKey := certFor(t, dir, "b", roots, "*.b.test")
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: web, listen: "127.0.0.1:0", redirect_to_https: true}
  - name: secure
    listen: "127.0.0.1:0"
    tls:
      certificates:
        - {cert_file: %q, key_file: %q}
        - {cert_file: %q, key_file: %q}
  - {name: internal, listen: "127.0.0.1:0"}
services:
  - {name: app, url: %q}
  - {name: internal, url: %q}
routes:
  - {name: all, match: {paths: ["/"]}, service: app}
  - {name: internal-only, match: {paths: ["/internal"]}, service: internal, listeners: [internal]}
`, aCert, aKey, bCert, bKey, up.URL(), internal.URL()))
	secure := g.listeners["secure"]
	_, securePort, _ := net.SplitHostPort(secure)

	// The certificate follows the name the client asks for.
	for _, tt := range []struct{ sni, want string }{{"a.test", "a.test"}, {"api.b.test", "*.b.test"}, {"", "a.test"}} {
		conn, err := tls.Dial("tcp", secure, &tls.Config{ServerName: tt.sni, InsecureSkipVerify: tt.sni == "", RootCAs: roots})
		if err != nil {
			t.Fatalf("SNI %q: %s", tt.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if got != tt.want {
			t.Errorf("SNI %q: got the certificate of %s, want %s", tt.sni, got, tt.want)
		}
	}

	// Host and SNI must select the same certificate (domain fronting).
	httpsGet := func(sni, host, path string) (*http.Response, []byte) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: roots}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		req, _ := http.NewRequest("GET", "https://"+secure+path, nil)
		req.Host = host
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET %s (SNI %s, Host %s): %s", path, sni, host, err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp, b[:n]
	}
	if resp, body := httpsGet("a.test", "a.test", "/x"); resp.StatusCode != 200 {
		t.Errorf("SNI and Host a.test: got %d %s, want 200", resp.StatusCode, body)
	} else if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("HSTS: got %q, want max-age=31536000", got)
	}
	if resp, body := httpsGet("api.b.test", "other.b.test:"+securePort, "/x"); resp.StatusCode != 200 {
		t.Errorf("SNI api.b.test, Host other.b.test (the same certificate): got %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := httpsGet("a.test", "api.b.test", "/x"); resp.StatusCode != http.StatusMisdirectedRequest ||
		!strings.Contains(string(body), "another certificate") {
		t.Errorf("SNI a.test, Host api.b.test: got %d %s, want 421", resp.StatusCode, body)
	}

	// The plain listener redirects to the TLS listener's port, path and
	// query kept; ACME HTTP-01 challenges are routed instead.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+g.listeners["web"]+"/orders/7?x=1&y=%2F", nil)
	req.Host = "a.test"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://a.test:" + securePort + "/orders/7?x=1&y=%2F"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("redirect: got %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, err = noRedirect.Get("http://" + g.listeners["web"] + "/.well-known/acme-challenge/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusPermanentRedirect {
		t.Errorf("ACME challenge path: got a redirect, want it routed")
	}
	if resp, _ := get(t, newClient(t), "http://"+g.listeners["internal"]+"/x"); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("a plain listener sent HSTS")
	}

	// A route can take requests from some listeners only: /internal
	// reaches the internal service on the internal listener, and the
	// catch-all route on the others.
	if resp, body := get(t, newClient(t), "http://"+g.listeners["internal"]+"/internal"); resp.StatusCode != 200 ||
		resp.Header.Get("X-Upstream") != "internal" {
		t.Errorf("/internal on the internal listener: got %d from %q %s, want 200 from internal", resp.StatusCode,
			resp.Header.Get("X-Upstream"), body)
	}
	if resp, _ := httpsGet("a.test", "a.test", "/internal"); resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "app" {
		t.Errorf("/internal on the secure listener: got %d from %q, want 200 from app (the catch-all)", resp.StatusCode,
			resp.Header.Get("X-Upstream"))
	}
	if n := len(internal.requests()); n != 1 {
		t.Errorf("the internal service got %d requests, want only the one from its listener", n)
	}
}

// TestCertificateFilesWatched replaces a listener's certificate files
// (written aside and renamed over, as renewals do): new handshakes get the
// new certificate without a signal, and a connection opened before keeps
// working.
func TestCertificateFilesWatched(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "app", nil)
	dir, roots := t.TempDir(), x509.NewCertPool()
	certFile, keyFile := certFor(t, dir, "live", roots, "a.test")
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - name: secure
    listen: "127.0.0.1:0"
    tls: {cert_file: %q, key_file: %q}
services:
  - {name: app, url: %q}
routes:
  - {name: all, match: {paths: ["/"]}, service: app}
`, certFile, keyFile, up.URL()))
	addr := g.listeners["secure"]
	serial := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.test", RootCAs: roots})
		if err != nil {
			t.Fatalf("handshake: %s", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if resp, body := get(t, client, "https://"+addr+"/before"); resp.StatusCode != 200 {
		t.Fatalf("before: got %d %s", resp.StatusCode, body)
	}

	next := filepath.Join(dir, "next")
	if err := os.Mkdir(next, 0o700); err != nil {
		t.Fatal(err)
	}
	newCert, newKey := certFor(t, next, "live", roots, "a.test")
	if err := os.Rename(newKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(newCert, certFile); err != nil {
		t.Fatal(err)
	}
	if !g.stderr.waitFor(10*time.Second, g.done, func(s string) bool { return strings.Contains(s, `"config reloaded"`) }) {
		t.Fatalf("no reload after the certificate files changed; stderr:\n%s", g.stderr)
	}
	if after := serial(); after == before {
		t.Errorf("got the old certificate (serial %s) after the files changed, want the new one", before)
	}
	if resp, body := get(t, client, "https://"+addr+"/after"); resp.StatusCode != 200 {
		t.Errorf("the connection opened before: got %d %s, want 200", resp.StatusCode, body)
	}
}

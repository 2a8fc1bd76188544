package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/certtest"
)

// mtlsPKI is the material of the client certificate tests: the gateway's
// server certificate, a client CA with a CRL, and client certificates.
type mtlsPKI struct {
	dir                     string
	serverCA, clientCA      *certtest.CA
	certFile, keyFile       string
	caFile, crlFile         string
	billing, reports, gone  *certtest.Cert // gone is revoked
	foreign                 *certtest.Cert // from another CA
	billingURI, reportsName string
}

func newMTLSPKI(t *testing.T) *mtlsPKI {
	t.Helper()
	p := &mtlsPKI{dir: t.TempDir(), serverCA: certtest.NewCA(t, "server CA"), clientCA: certtest.NewCA(t, "client CA"),
		billingURI: "spiffe://example.org/ns/prod/sa/billing", reportsName: "reports"}
	p.certFile, p.keyFile = p.serverCA.Server(t).WriteFiles(t, p.dir, "server")
	p.billing = p.clientCA.Issue(t, certtest.Options{CommonName: "billing-7", URIs: []string{p.billingURI}})
	p.reports = p.clientCA.Issue(t, certtest.Options{CommonName: p.reportsName})
	p.gone = p.clientCA.Issue(t, certtest.Options{CommonName: "billing-6", URIs: []string{p.billingURI}})
	p.foreign = certtest.NewCA(t, "other CA").Issue(t, certtest.Options{CommonName: "billing-7", URIs: []string{p.billingURI}})
	p.caFile = certtest.WriteFile(t, p.dir, "clients.pem", p.clientCA.PEM())
	p.crlFile = certtest.WriteFile(t, p.dir, "clients.crl",
		certtest.CRLPEM(p.clientCA.CRL(t, time.Now().Add(24*time.Hour), p.gone.Cert)))
	return p
}

// client returns a client that trusts the gateway's certificate and
// presents cert (nil: none) whenever the gateway asks for one.
func (p *mtlsPKI) client(t *testing.T, cert *certtest.Cert) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.serverCA.Pool(), ServerName: "localhost"}
	if cert != nil {
		c := cert.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// forgedCertHeaders are client certificate headers a client tries to
// smuggle upstream.
var forgedCertHeaders = []string{
	"Client-Cert", ":" + base64.StdEncoding.EncodeToString([]byte("forged certificate")) + ":",
	"Client-Cert-Chain", ":Zm9yZ2Vk:",
	"X-Client-Cert-Subject", "CN=admin",
	"X-Client-Cert-Fingerprint", strings.Repeat("0", 64),
	"X-Client-Cert-SAN-URI", "spiffe://example.org/ns/prod/sa/admin",
}

// TestClientCertificates runs a gateway with a listener that requires
// client certificates, one that only requests them, and a plain one: a
// certificate maps to a consumer that acl admits or denies; the handshake
// without a certificate, with a revoked one or one of another CA is
// refused where one is required; where one is only requested, the route
// with mtls_auth refuses requests without one while another route serves
// them; the certificate reaches the upstream as RFC 9440 Client-Cert, and
// a Client-Cert the client sends never does.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	p := newMTLSPKI(t)
	up := newUpstream(t, "app", nil)
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - name: strict
    listen: "127.0.0.1:0"
    tls:
      cert_file: %[1]q
      key_file: %[2]q
      client_auth: {ca_files: [%[3]q], crl_files: [%[4]q]}
  - name: optional
    listen: "127.0.0.1:0"
    tls:
      cert_file: %[1]q
      key_file: %[2]q
      client_auth: {mode: request, ca_files: [%[3]q], crl_files: [%[4]q]}
  - {name: plain, listen: "127.0.0.1:0"}
services:
  - {name: app, url: %[5]q}
routes:
  - name: payments
    match: {paths: ["/payments"]}
    service: app
    plugins:
      mtls_auth: {forward: rfc9440}
      acl: {allow: [payments]}
  - {name: public, match: {paths: ["/public"]}, service: app}
consumers:
  - name: billing
    groups: [payments]
    credentials:
      certificates: [{san_uri: %[6]q}]
  - name: reports
    groups: [analytics]
    credentials:
      certificates: [{subject_cn: %[7]q}]
`, p.certFile, p.keyFile, p.caFile, p.crlFile, up.URL(), p.billingURI, p.reportsName))
	strict := "https://" + g.listeners["strict"]
	optional := "https://" + g.listeners["optional"]
	plain := "http://" + g.listeners["plain"]

	// A certificate names a consumer; acl admits or denies it.
	for i, base := range []string{strict, optional} {
		id := fmt.Sprintf("mtls-billing-%d", i)
		resp, body := get(t, p.client(t, p.billing), base+"/payments", append([]string{"X-Request-ID", id}, forgedCertHeaders...)...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s billing: got %d %s, want 200", base, resp.StatusCode, body)
		}
		s, ok := up.byID(id)
		if !ok {
			t.Fatalf("%s billing: the upstream did not receive the request", base)
		}
		if got := s.Header.Get("X-Consumer-Name"); got != "billing" {
			t.Errorf("%s billing: got X-Consumer-Name %q, want billing", base, got)
		}
		// RFC 9440: the verified leaf, never the client's header; no
		// chain (the CA issued the certificate directly).
		got := s.Header.Values("Client-Cert")
		want := ":" + base64.StdEncoding.EncodeToString(p.billing.Cert.Raw) + ":"
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s billing: got Client-Cert %q upstream, want the certificate's DER as a byte sequence", base, got)
		}
		for _, h := range []string{"Client-Cert-Chain", "X-Client-Cert-Subject", "X-Client-Cert-Fingerprint", "X-Client-Cert-San-Uri"} {
			if v := s.Header.Values(h); len(v) != 0 {
				t.Errorf("%s billing: got forged %s %q upstream, want none", base, h, v)
			}
		}
	}
	resp, body := get(t, p.client(t, p.reports), strict+"/payments")
	checkProblem(t, resp, body, http.StatusForbidden)

	// Where a certificate is required, a handshake without a valid one
	// fails.
	for name, cert := range map[string]*certtest.Cert{"no certificate": nil, "revoked": p.gone, "another CA": p.foreign} {
		if resp, err := p.client(t, cert).Get(strict + "/public"); err == nil {
			resp.Body.Close()
			t.Errorf("strict, %s: got %d, want a failed handshake", name, resp.StatusCode)
		}
	}
	// Where one is only requested, an invalid one still fails the
	// handshake...
	for name, cert := range map[string]*certtest.Cert{"revoked": p.gone, "another CA": p.foreign} {
		if resp, err := p.client(t, cert).Get(optional + "/public"); err == nil {
			resp.Body.Close()
			t.Errorf("optional, %s: got %d, want a failed handshake", name, resp.StatusCode)
		}
	}
	// ... and without one, the route with mtls_auth refuses while the
	// other route serves; forged certificate headers never go upstream.
	anon := p.client(t, nil)
	resp, body = get(t, anon, optional+"/payments")
	if p := checkProblem(t, resp, body, http.StatusUnauthorized); p["detail"] != "a client certificate is required" {
		t.Errorf("optional, no certificate: got detail %v, want a client certificate is required", p["detail"])
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != `MutualTLS realm="portico"` {
		t.Errorf("optional, no certificate: got WWW-Authenticate %q", got)
	}
	for i, base := range []string{optional, plain} {
		c := anon
		if base == plain {
			c = newClient(t)
		}
		id := fmt.Sprintf("public-%d", i)
		if resp, body := get(t, c, base+"/public", append([]string{"X-Request-ID", id}, forgedCertHeaders...)...); resp.StatusCode != http.StatusOK {
			t.Errorf("%s /public: got %d %s, want 200", base, resp.StatusCode, body)
		}
		s, ok := up.byID(id)
		if !ok {
			t.Fatalf("%s /public: the upstream did not receive the request", base)
		}
		for i := 0; i < len(forgedCertHeaders); i += 2 {
			if v := s.Header.Values(forgedCertHeaders[i]); len(v) != 0 {
				t.Errorf("%s /public: got forged %s %q upstream, want none", base, forgedCertHeaders[i], v)
			}
		}
	}
	// A plain listener never has a certificate to show.
	resp, body = get(t, newClient(t), plain+"/payments")
	checkProblem(t, resp, body, http.StatusUnauthorized)
}

// TestClientCertificateRevokedByReload replaces the CRL file (written
// aside and renamed over): the gateway reloads by itself, a connection
// opened before with the now revoked certificate gets 421, and new
// handshakes with it fail; the other certificates keep working.
func TestClientCertificateRevokedByReload(t *testing.T) {
	t.Parallel()
	p := newMTLSPKI(t)
	up := newUpstream(t, "app", nil)
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - name: strict
    listen: "127.0.0.1:0"
    tls:
      cert_file: %q
      key_file: %q
      client_auth: {ca_files: [%q], crl_files: [%q]}
services:
  - {name: app, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: app, plugins: {mtls_auth: {}}}
consumers:
  - {name: billing, credentials: {certificates: [{san_uri: %q}]}}
  - {name: reports, credentials: {certificates: [{subject_cn: %q}]}}
`, p.certFile, p.keyFile, p.caFile, p.crlFile, up.URL(), p.billingURI, p.reportsName))
	base := "https://" + g.listeners["strict"]
	open := p.client(t, p.billing)
	if resp, body := get(t, open, base+"/before"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: got %d %s, want 200", resp.StatusCode, body)
	}

	// The CA revokes billing's certificate: a DER CRL this time.
	certtest.ReplaceFile(t, p.dir, filepath.Base(p.crlFile),
		p.clientCA.CRL(t, time.Now().Add(24*time.Hour), p.gone.Cert, p.billing.Cert))
	if !g.stderr.waitFor(10*time.Second, g.done, func(s string) bool { return strings.Contains(s, `"config reloaded"`) }) {
		t.Fatalf("no reload after the CRL file changed; stderr:\n%s", g.stderr)
	}
	resp, body := get(t, open, base+"/after")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("the connection opened before: got %d %s, want 421", resp.StatusCode, body)
	}
	if resp, err := p.client(t, p.billing).Get(base + "/after"); err == nil {
		resp.Body.Close()
		t.Errorf("a new connection with the revoked certificate: got %d, want a failed handshake", resp.StatusCode)
	}
	if resp, body := get(t, p.client(t, p.reports), base+"/after"); resp.StatusCode != http.StatusOK {
		t.Errorf("another certificate: got %d %s, want 200", resp.StatusCode, body)
	}

	// A CRL that no CA of ca_files signed refuses the reload, located;
	// the running policy stays.
	certtest.ReplaceFile(t, p.dir, filepath.Base(p.crlFile), certtest.NewCA(t, "other CA").CRL(t, time.Now().Add(time.Hour)))
	if !g.stderr.waitFor(10*time.Second, g.done, func(s string) bool {
		return strings.Contains(s, `listeners[0].tls.client_auth.crl_files[0]: CRL file `) && strings.Contains(s, "not signed by a CA of ca_files")
	}) {
		t.Fatalf("no failed reload naming the CRL; stderr:\n%s", g.stderr)
	}
	if resp, body := get(t, p.client(t, p.reports), base+"/still"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the failed reload: got %d %s, want 200", resp.StatusCode, body)
	}
	if resp, err := p.client(t, p.billing).Get(base + "/still"); err == nil {
		resp.Body.Close()
		t.Errorf("after the failed reload, the revoked certificate: got %d, want a failed handshake", resp.StatusCode)
	}
}

// TestClientAuthValidate: `portico validate` refuses a route with
// mtls_auth that only listeners without client_auth serve, located, and
// does not read the CA and CRL files (as it does not read cert_file).
func TestClientAuthValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	write := func(routeListeners string) {
		t.Helper()
		cfg := `listeners:
  - {name: web, listen: "127.0.0.1:0"}
  - name: mtls
    listen: "127.0.0.1:0"
    tls:
      cert_file: /nonexistent/tls.crt
      key_file: /nonexistent/tls.key
      client_auth: {ca_files: [/nonexistent/ca.pem], crl_files: [/nonexistent/ca.crl]}
services:
  - {name: app, url: "http://127.0.0.1:3001"}
routes:
  - name: api
    match: {paths: ["/"]}
    service: app
    listeners: ` + routeListeners + `
    plugins:
      mtls_auth: {}
`
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[mtls]")
	if code, stdout, stderr := runCLI(t, "validate", "-c", file); code != 0 || strings.TrimSpace(stdout) != "ok" {
		t.Errorf("route on the mtls listener: got exit %d, stdout %q, stderr %q; want ok", code, stdout, stderr)
	}
	write("[web]")
	code, _, stderr := runCLI(t, "validate", "-c", file)
	want := file + `:17:7: routes[0].plugins.mtls_auth: route "api" takes requests only from listeners without tls.client_auth (web)`
	if code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("route on the plain listener only: got exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

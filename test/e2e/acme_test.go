package e2e

import (
	"context"
	"crypto"
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
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/portico-gateway/portico/internal/certtest"
	"github.com/portico-gateway/portico/internal/pebbletest"
	"github.com/portico-gateway/portico/internal/redistest"
)

// The ACME tests run the gateway against Pebble, a real ACME server that
// validates each challenge by connecting back to the gateway: HTTP-01 on
// the plain listener's port, TLS-ALPN-01 on the TLS listener's. Those
// ports are picked free at test time and written into both configs.
// Pebble's DNS server (pebble-challtestsrv) resolves every name to
// 127.0.0.1.

// issueTimeout bounds one issuance by Pebble.
const issueTimeout = 30 * time.Second

// acmeEnv is one Pebble and the ports it validates on.
type acmeEnv struct {
	pebble          *pebbletest.Pebble
	httpPort, tlsPs int
	dir             string // the ACME storage directory
}

func newACMEEnv(t *testing.T, validity time.Duration, ocspURL string) *acmeEnv {
	t.Helper()
	e := &acmeEnv{httpPort: pebbletest.FreePort(t), tlsPs: pebbletest.FreePort(t), dir: filepath.Join(t.TempDir(), "acme")}
	e.pebble = pebbletest.Start(t, pebbletest.Options{HTTPPort: e.httpPort, TLSPort: e.tlsPs, Validity: validity, OCSPResponderURL: ocspURL})
	return e
}

// acmeBlock is the tls.acme mapping for domains with the given extra keys.
func (e *acmeEnv) acmeBlock(domains string, extra string) string {
	return fmt.Sprintf(`acme: {domains: [%s], email: ops@portico.test, directory: %q, ca_file: %q, storage: {dir: %q}%s}`,
		domains, e.pebble.Directory, e.pebble.CAFile, e.dir, extra)
}

// handshake opens a TLS connection to addr for sni, verified against
// roots, and returns the leaf and the stapled OCSP response.
func handshake(t *testing.T, addr, sni string, roots *x509.CertPool) (*x509.Certificate, []byte, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots})
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0], st.OCSPResponse, nil
}

// waitLog waits for a gateway log line with msg whose key has value.
func waitLog(t *testing.T, g *gw, timeout time.Duration, msg string, kv ...string) map[string]any {
	t.Helper()
	var found map[string]any
	ok := g.stderr.waitFor(timeout, g.done, func(string) bool {
		for _, l := range g.stderr.JSONLines() {
			if l["msg"] != msg {
				continue
			}
			match := true
			for i := 0; i+1 < len(kv); i += 2 {
				if fmt.Sprint(l[kv[i]]) != kv[i+1] {
					match = false
				}
			}
			if match {
				found = l
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no %q log line %v within %s", msg, kv, timeout)
	}
	return found
}

func countLogs(g *gw, msg string) int { return g.logCount(msg) }

// TestACMEHTTP01 obtains a certificate with HTTP-01 through a plain
// listener that redirects everything else to HTTPS, serves it beside a
// file certificate (each chosen by SNI), staples the OCSP response of
// the ACME certificate from a responder the test runs, and reports both
// certificates' expiry.
func TestACMEHTTP01(t *testing.T) {
	t.Parallel()
	resp := newOCSPResponder(t)
	e := newACMEEnv(t, 0, resp.URL())
	resp.issuer, resp.key = e.pebble.Intermediate()
	up := newUpstream(t, "app", nil)
	fileRoots := x509.NewCertPool()
	fCert, fKey := certFor(t, t.TempDir(), "files", fileRoots, "files.portico.test")
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: web, listen: "127.0.0.1:%d", redirect_to_https: true}
  - name: secure
    listen: "127.0.0.1:%d"
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
      %s
services: [{name: app, url: %q}]
routes: [{name: all, match: {paths: ["/"]}, service: app}]
`, e.httpPort, e.tlsPs, fCert, fKey, e.acmeBlock("http.portico.test", ", challenges: [http-01]"), up.URL()))

	obtained := waitLog(t, g, issueTimeout, "certificate obtained", "domain", "http.portico.test")
	roots := e.pebble.Roots()
	secure := g.listeners["secure"]
	leaf, _, err := handshake(t, secure, "http.portico.test", roots)
	if err != nil {
		t.Fatalf("handshake for the ACME name, verified against Pebble's root: %s", err)
	}
	if got := leaf.SerialNumber.Text(16); got != obtained["serial"] {
		t.Errorf("served serial %s, want the obtained %v", got, obtained["serial"])
	}
	if leaf, _, err := handshake(t, secure, "files.portico.test", fileRoots); err != nil || leaf.Subject.CommonName != "files.portico.test" {
		t.Errorf("the file certificate's name: got %v, %v; want the file certificate", leaf, err)
	}
	// Unknown names get the default: the file certificate.
	if leaf, _, err := handshake(t, secure, "other.portico.test", fileRoots); err == nil || leaf != nil {
		t.Logf("unknown name: %v", err) // the file certificate does not name it: verification fails, as it should
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "http.portico.test"}}}
	t.Cleanup(c.CloseIdleConnections)
	req, _ := http.NewRequest("GET", "https://"+secure+"/x", nil)
	req.Host = "http.portico.test"
	res, err := c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("HTTPS request with the ACME certificate: %v %v", res, err)
	}
	res.Body.Close()

	// The ACME certificate names the test's OCSP responder: its response
	// is stapled.
	eventually(t, 10*time.Second, func() error {
		_, staple, err := handshake(t, secure, "http.portico.test", roots)
		if err != nil {
			return err
		}
		if staple == nil {
			return fmt.Errorf("no OCSP staple yet")
		}
		if r, err := ocsp.ParseResponseForCert(staple, leaf, resp.issuer); err != nil || r.Status != ocsp.Good {
			return fmt.Errorf("staple: %v, %v", r, err)
		}
		return nil
	})

	page := scrapeMetrics(t, g)
	if v := metricValue(t, page, `portico_acme_orders_total{result="ok"}`); v != 1 {
		t.Errorf("orders ok: got %v, want 1", v)
	}
	for _, name := range []string{"http.portico.test", "files.portico.test"} {
		if v := metricValue(t, page, fmt.Sprintf(`portico_tls_certificate_expiry_seconds{listener="secure",name=%q}`, name)); v <= 0 {
			t.Errorf("expiry of %s: got %v, want > 0", name, v)
		}
	}
}

// TestACMETLSALPN01 obtains a certificate with TLS-ALPN-01 on a gateway
// that has only a TLS listener and no certificate files.
func TestACMETLSALPN01(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, 0, "")
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listen: "127.0.0.1:%d"
tls:
  %s
`, e.tlsPs, e.acmeBlock("alpn.portico.test", ", challenges: [tls-alpn-01]")))
	waitLog(t, g, issueTimeout, "certificate obtained", "domain", "alpn.portico.test")
	if _, _, err := handshake(t, g.addr, "alpn.portico.test", e.pebble.Roots()); err != nil {
		t.Fatalf("handshake: %s", err)
	}
}

// TestACMETLSALPN01WithClientAuth: a listener that requires client
// certificates still answers the ACME server's TLS-ALPN-01 validation,
// which carries none; an ordinary client without a certificate is still
// refused.
func TestACMETLSALPN01WithClientAuth(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, 0, "")
	ca := certtest.WriteFile(t, t.TempDir(), "clients.pem", certtest.NewCA(t, "client CA").PEM())
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listen: "127.0.0.1:%d"
tls:
  client_auth: {ca_files: [%q]}
  %s
`, e.tlsPs, ca, e.acmeBlock("mtls.portico.test", ", challenges: [tls-alpn-01]")))
	waitLog(t, g, issueTimeout, "certificate obtained", "domain", "mtls.portico.test")
	conn, err := tls.Dial("tcp", g.addr, &tls.Config{ServerName: "mtls.portico.test", RootCAs: e.pebble.Roots()})
	if err == nil {
		// TLS 1.3: the refusal of the missing certificate arrives with the
		// first read.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("a client without a certificate: got %v, want the handshake refused (certificate required)", err)
	}
}

// TestACMERenewal: a short-lived certificate is renewed before it
// expires; new handshakes get the new one while a connection opened
// before keeps working.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, 8*time.Second, "")
	up := newUpstream(t, "app", nil)
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listen: "127.0.0.1:%d"
tls:
  %s
services: [{name: app, url: %q}]
routes: [{name: all, match: {paths: ["/"]}, service: app}]
`, e.tlsPs, e.acmeBlock("renew.portico.test", ", challenges: [tls-alpn-01], renew_before: 5s"), up.URL()))
	first := waitLog(t, g, issueTimeout, "certificate obtained", "domain", "renew.portico.test", "renewal", "false")
	roots := e.pebble.Roots()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "renew.portico.test"}, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var conns atomic.Int32
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	do := func() *x509.Certificate {
		res, err := c.Get("https://" + g.addr + "/x")
		if err != nil {
			t.Fatalf("request: %s", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.TLS.PeerCertificates[0]
	}
	if got := do().SerialNumber.Text(16); got != first["serial"] {
		t.Fatalf("served %s, want %v", got, first["serial"])
	}
	second := waitLog(t, g, issueTimeout, "certificate obtained", "domain", "renew.portico.test", "renewal", "true")
	if second["serial"] == first["serial"] {
		t.Fatalf("renewal kept the serial %v", first["serial"])
	}
	if got := do().SerialNumber.Text(16); got != first["serial"] || conns.Load() != 1 {
		t.Errorf("the open connection: got serial %s over %d connections, want the first certificate's over one", got, conns.Load())
	}
	leaf, _, err := handshake(t, g.addr, "renew.portico.test", roots)
	if err != nil || leaf.SerialNumber.Text(16) != second["serial"] {
		t.Errorf("a new handshake: got %v, %v; want the renewed certificate %v", leaf, err, second["serial"])
	}
}

// TestACMERevokeCLI revokes an obtained certificate with `portico certs
// revoke`, which Pebble then reports revoked; a reload orders a new one.
func TestACMERevokeCLI(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, 0, "")
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listen: "127.0.0.1:%d"
tls:
  %s
`, e.tlsPs, e.acmeBlock("revoke.portico.test", "")))
	first := waitLog(t, g, issueTimeout, "certificate obtained", "domain", "revoke.portico.test")
	serial, _ := new(big.Int).SetString(first["serial"].(string), 16)
	if got := e.pebble.Status(serial); got != "Valid" {
		t.Fatalf("before: Pebble says %s, want Valid", got)
	}
	cmd := exec.Command(binPath, "certs", "revoke", "-c", g.file, "revoke.portico.test")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revoked the certificate of revoke.portico.test (serial "+serial.Text(16)+")") {
		t.Fatalf("portico certs revoke: %v\n%s", err, out)
	}
	if got := e.pebble.Status(serial); got != "Revoked" {
		t.Errorf("after: Pebble says %s, want Revoked", got)
	}
	// Revoking again fails: the certificate is no longer in storage.
	if out, err := exec.Command(binPath, "certs", "revoke", "-c", g.file, "revoke.portico.test").CombinedOutput(); err == nil {
		t.Errorf("second revoke: got success, want an error:\n%s", out)
	}
	if out, err := exec.Command(binPath, "certs", "revoke", "-c", g.file, "unknown.portico.test").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "not in the acme.domains") {
		t.Errorf("unknown name: got %v\n%s", err, out)
	}
	g.Signal(syscall.SIGHUP)
	second := waitLog(t, g, issueTimeout, "certificate obtained", "domain", "revoke.portico.test", "renewal", "true")
	if second["serial"] == first["serial"] {
		t.Errorf("after reload: serial %v again, want a new certificate", second["serial"])
	}
}

// TestACMESharedRedis runs two gateways that keep ACME state in one
// Redis: one of them orders, the other waits and loads the result; both
// serve the same certificate. Pebble validates on the first gateway's
// ports whichever instance ordered, so the challenge answers travel
// through Redis too.
func TestACMESharedRedis(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	e := newACMEEnv(t, 0, "")
	conf := func(httpPort, tlsPort int) string {
		return fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
store: {redis: {url: %q}}
listeners:
  - {name: web, listen: "127.0.0.1:%d"}
  - name: secure
    listen: "127.0.0.1:%d"
    tls:
      %s
`, rd.URL(), httpPort, tlsPort, e.acmeBlock("shared.portico.test", ""))
	}
	a := startGateway(t, conf(e.httpPort, e.tlsPs))
	b := startGateway(t, conf(0, 0))
	served := func(g *gw) string {
		var serial string
		eventually(t, issueTimeout, func() error {
			leaf, _, err := handshake(t, g.listeners["secure"], "shared.portico.test", e.pebble.Roots())
			if err != nil {
				return err
			}
			serial = leaf.SerialNumber.Text(16)
			return nil
		})
		return serial
	}
	sa, sb := served(a), served(b)
	if sa != sb {
		t.Errorf("the instances serve serials %s and %s, want one certificate", sa, sb)
	}
	orders := func(g *gw) float64 {
		return metricValue(t, scrapeMetrics(t, g), `portico_acme_orders_total{result="ok"}`)
	}
	if n := orders(a) + orders(b); n != 1 {
		t.Errorf("orders across the instances: got %v, want 1", n)
	}
	if n := countLogs(a, "certificate obtained") + countLogs(b, "certificate obtained"); n != 1 {
		t.Errorf("certificates obtained across the instances: got %d, want 1", n)
	}
	if n := countLogs(a, "acme account key created") + countLogs(b, "acme account key created"); n != 1 {
		t.Errorf("account keys created: got %d, want 1 (shared)", n)
	}
}

// TestACMEBackoff: with an ACME server that fails every request, the
// gateway starts and serves at once, logs and counts the failed order,
// backs off (a minute, not a hot loop), and refuses handshakes for the
// name instead of hanging them.
func TestACMEBackoff(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	down := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemCert(down.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, "app", nil)
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: web, listen: "127.0.0.1:0"}
  - name: secure
    listen: "127.0.0.1:0"
    tls:
      acme: {domains: [down.portico.test], directory: %q, ca_file: %q, storage: {dir: %q}}
services: [{name: app, url: %q}]
routes: [{name: all, match: {paths: ["/"]}, service: app}]
`, down.URL+"/directory", caFile, t.TempDir(), up.URL()))
	if resp, _ := get(t, newClient(t), "http://"+g.listeners["web"]+"/x"); resp.StatusCode != 200 {
		t.Errorf("plain listener while the ACME server is down: got %d, want 200", resp.StatusCode)
	}
	failed := waitLog(t, g, 20*time.Second, "acme order failed", "domain", "down.portico.test")
	if failed["retry_in"] != "1m0s" || failed["failures"] != float64(1) {
		t.Errorf("first failure: retry_in %v failures %v, want 1m0s and 1", failed["retry_in"], failed["failures"])
	}
	if v := metricValue(t, scrapeMetrics(t, g), `portico_acme_orders_total{result="failed"}`); v != 1 {
		t.Errorf("failed orders: got %v, want 1", v)
	}
	n := hits.Load()
	if n == 0 || n > 3 {
		t.Errorf("requests to the failing server: got %d, want 1 to 3 (two quick retries, then the backoff)", n)
	}
	start := time.Now()
	_, _, err := handshake(t, g.listeners["secure"], "down.portico.test", nil)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("handshake without a certificate: got %v after %s, want a quick failure", err, time.Since(start))
	}
	if got := hits.Load(); got != n {
		t.Errorf("the ACME server got %d more requests during the backoff", got-n)
	}
}

// TestOCSPStaplingFileCertificate: a certificate file whose leaf names
// an OCSP responder gets its response stapled, refreshed halfway to
// NextUpdate; a response that does not verify is never stapled, and the
// last good one goes once it expires.
func TestOCSPStaplingFileCertificate(t *testing.T) {
	t.Parallel()
	resp := newOCSPResponder(t)
	resp.validity = 4 * time.Second
	dir := t.TempDir()
	roots := x509.NewCertPool()
	certFile, keyFile, ca, caKey := chainWithOCSP(t, dir, roots, resp.URL(), "ocsp.portico.test")
	resp.issuer, resp.key = ca, caKey
	g := startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listen: 127.0.0.1:0
tls: {cert_file: %q, key_file: %q}
`, certFile, keyFile))
	var first *ocsp.Response
	eventually(t, 10*time.Second, func() error {
		leaf, staple, err := handshake(t, g.addr, "ocsp.portico.test", roots)
		if err != nil {
			return err
		}
		if staple == nil {
			return fmt.Errorf("no staple yet")
		}
		first, err = ocsp.ParseResponseForCert(staple, leaf, ca)
		return err
	})
	// Halfway to NextUpdate (2s) the gateway fetches again.
	eventually(t, 10*time.Second, func() error {
		leaf, staple, err := handshake(t, g.addr, "ocsp.portico.test", roots)
		if err != nil || staple == nil {
			return fmt.Errorf("staple %v, %v", staple != nil, err)
		}
		r, err := ocsp.ParseResponseForCert(staple, leaf, ca)
		if err != nil || !r.ThisUpdate.After(first.ThisUpdate) {
			return fmt.Errorf("still the first response (%v)", err)
		}
		return nil
	})
	// From now on the responder signs with a key the CA never certified:
	// those responses are refused, the last good one stays until it
	// expires, then nothing is stapled.
	resp.forge()
	eventually(t, 15*time.Second, func() error {
		_, staple, err := handshake(t, g.addr, "ocsp.portico.test", roots)
		if err != nil {
			return err
		}
		if staple != nil {
			if _, err := ocsp.ParseResponse(staple, ca); err != nil {
				t.Fatalf("a forged response was stapled: %s", err)
			}
			return fmt.Errorf("still stapled")
		}
		return nil
	})
	if !strings.Contains(g.stderr.String(), "ocsp staple refresh failed") {
		t.Errorf("the refused response was not logged")
	}
}

// ocspResponder answers OCSP requests with responses signed by issuer's
// key, good for validity.
type ocspResponder struct {
	srv      *httptest.Server
	issuer   *x509.Certificate
	key      any
	validity time.Duration
	forged   atomic.Bool
}

func newOCSPResponder(t *testing.T) *ocspResponder {
	r := &ocspResponder{validity: time.Hour}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *ocspResponder) URL() string { return r.srv.URL }

// forge makes every later response signed by a key of its own.
func (r *ocspResponder) forge() { r.forged.Store(true) }

func (r *ocspResponder) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	q, err := ocsp.ParseRequest(b)
	if err != nil || r.issuer == nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	signer := r.key.(crypto.Signer)
	if r.forged.Load() {
		signer = newKey()
	}
	now := time.Now()
	der, err := ocsp.CreateResponse(r.issuer, r.issuer, ocsp.Response{Status: ocsp.Good, SerialNumber: q.SerialNumber,
		ThisUpdate: now, NextUpdate: now.Add(r.validity)}, signer)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// chainWithOCSP writes a leaf for name, issued by a new CA (added to
// roots), whose AIA names ocspURL; the certificate file holds the chain.
func chainWithOCSP(t *testing.T, dir string, roots *x509.CertPool, ocspURL, name string) (certFile, keyFile string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	caKey = newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "OCSP test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	roots.AddCert(ca)
	key := newKey()
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, OCSPServer: []string{ocspURL},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, append(pemCert(leafDER), pemCert(caDER)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca, caKey
}

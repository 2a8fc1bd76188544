package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestUpstreamMutualTLS forwards to an https target that requires a client
// certificate: the gateway verifies the target against ca_file and
// presents cert_file; without the CA, or without the client certificate,
// the request fails with 502 and nothing is served.
func TestUpstreamMutualTLS(t *testing.T) {
	t.Parallel()
	srvDir, cliDir := t.TempDir(), t.TempDir()
	srvCert, srvKey, _ := selfSigned(t, srvDir)
	cliCert, cliKey, cliPool := selfSigned(t, cliDir)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.TLS.PeerCertificates[0].Subject.CommonName)
		fmt.Fprintf(w, `{"tls":%q,"proto":%q}`, tls.VersionName(r.TLS.Version), r.Proto)
	}))
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    cliPool,
		MinVersion:   tls.VersionTLS12,
	}
	up.StartTLS()
	t.Cleanup(up.Close)
	// A CA file that does not hold the target's issuer.
	other, _, _ := selfSigned(t, t.TempDir())
	bad := filepath.Join(t.TempDir(), "other-ca.pem")
	if b, err := os.ReadFile(other); err != nil || os.WriteFile(bad, b, 0o600) != nil {
		t.Fatal("write other CA")
	}

	g := startGateway(t, base+fmt.Sprintf(`services:
  - name: ledger
    url: %[1]q
    tls: {ca_file: %[2]q, cert_file: %[3]q, key_file: %[4]q, server_name: localhost}
  - name: nocert
    url: %[1]q
    tls: {ca_file: %[2]q, server_name: localhost}
  - name: wrongca
    url: %[1]q
    tls: {ca_file: %[5]q, cert_file: %[3]q, key_file: %[4]q, server_name: localhost}
routes:
  - {name: ledger, match: {paths: ["/ledger"]}, service: ledger}
  - {name: nocert, match: {paths: ["/nocert"]}, service: nocert}
  - {name: wrongca, match: {paths: ["/wrongca"]}, service: wrongca}
`, up.URL, srvCert, cliCert, cliKey, bad))
	c := newClient(t)
	for i := 0; i < 3; i++ { // the second and third reuse the connection
		resp, body := get(t, c, g.URL("/ledger"))
		if resp.StatusCode != 200 || string(body) != `{"tls":"TLS 1.3","proto":"HTTP/1.1"}` {
			t.Fatalf("GET /ledger: got %d %s, want 200 over TLS 1.3 and HTTP/1.1", resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/nocert", "/wrongca"} {
		resp, body := get(t, c, g.URL(path))
		checkProblem(t, resp, body, http.StatusBadGateway)
	}
	if len(served) != 3 || served[0] != "portico e2e" {
		t.Fatalf("the target served %v, want 3 requests with the gateway's client certificate", served)
	}
}

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenersConfig is a gateway with three listeners: plain HTTP, HTTPS
// from certFile and keyFile, and cleartext HTTP/2.
func listenersConfig(up *upstream, certFile, keyFile string) string {
	return fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: public, listen: "127.0.0.1:0"}
  - name: secure
    listen: "127.0.0.1:0"
    tls: {cert_file: %q, key_file: %q}
  - {name: internal, listen: "127.0.0.1:0", h2c: true}
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, certFile, keyFile, up.URL())
}

// TestListenersServeTheSameRoutes: every listener of the list serves the
// routes, each with its own protocols.
func TestListenersServeTheSameRoutes(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	g := startGateway(t, listenersConfig(up, certFile, keyFile))
	if len(g.listeners) != 3 || g.listeners["public"] != g.addr {
		t.Fatalf("got listeners %v (first %s), want public, secure and internal with public first", g.listeners, g.addr)
	}

	tlsTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	h2cTr := &http.Transport{Protocols: new(http.Protocols)}
	h2cTr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tlsTr.CloseIdleConnections)
	t.Cleanup(h2cTr.CloseIdleConnections)
	tests := []struct {
		listener, url string
		client        *http.Client
		proto         string
		forwarded     string
	}{
		{"public", "http://" + g.listeners["public"], newClient(t), "HTTP/1.1", "http"},
		{"secure", "https://" + g.listeners["secure"], &http.Client{Transport: tlsTr, Timeout: 10 * time.Second}, "HTTP/2.0", "https"},
		{"internal", "http://" + g.listeners["internal"], &http.Client{Transport: h2cTr, Timeout: 10 * time.Second}, "HTTP/2.0", "http"},
	}
	for _, tt := range tests {
		id := "listener-" + tt.listener
		resp, body := get(t, tt.client, tt.url+"/x", "X-Request-ID", id)
		if resp.StatusCode != http.StatusOK || resp.Proto != tt.proto {
			t.Errorf("%s: got %d %s %s, want 200 %s", tt.listener, resp.StatusCode, resp.Proto, body, tt.proto)
			continue
		}
		s, ok := up.byID(id)
		if !ok {
			t.Errorf("%s: the upstream did not receive the request", tt.listener)
			continue
		}
		if got := s.Header.Get("X-Forwarded-Proto"); got != tt.forwarded {
			t.Errorf("%s: X-Forwarded-Proto %q, want %q", tt.listener, got, tt.forwarded)
		}
	}
}

// TestListenerChangesNeedRestart: a reload may replace a listener's
// certificate (new handshakes get the new one), but adding a listener or
// moving one is refused with a located error that says a restart is
// needed, and nothing of that config is applied.
func TestListenerChangesNeedRestart(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	g := startGateway(t, listenersConfig(up, certFile, keyFile))
	c := newClient(t)
	serial := func(pool *x509.CertPool) string {
		conn, err := tls.Dial("tcp", g.listeners["secure"], &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("handshake: %s", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial(roots)

	// A new certificate in another directory, named by the reloaded file.
	dir2 := filepath.Join(dir, "next")
	if err := os.Mkdir(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	certFile2, keyFile2, roots2 := selfSigned(t, dir2)
	g.writeConfig(listenersConfig(up, certFile2, keyFile2))
	if resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /reload with a new certificate: got %d %s, want 200", resp.StatusCode, body)
	}
	if after := serial(roots2); after == before {
		t.Errorf("got the old certificate (serial %s) after the reload, want the new one", before)
	}

	added := strings.Replace(listenersConfig(up, certFile2, keyFile2), "services:",
		"  - {name: extra, listen: \"127.0.0.1:0\"}\nservices:", 1)
	moved := strings.Replace(listenersConfig(up, certFile2, keyFile2), `{name: public, listen: "127.0.0.1:0"}`,
		`{name: public, listen: "127.0.0.2:0"}`, 1)
	for _, tt := range []struct{ name, yaml, want string }{
		{"added", added, "listeners: adding or removing a listener needs a restart"},
		{"moved", moved, "listeners[0].listen: cannot change on reload; restart portico"},
	} {
		g.writeConfig(tt.yaml)
		resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), tt.want) ||
			!strings.Contains(string(body), "portico.yaml:") {
			t.Errorf("%s: got %d %s, want 500 with the located %q", tt.name, resp.StatusCode, body, tt.want)
		}
		if resp, body := get(t, c, "http://"+g.listeners["public"]+"/still"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: the public listener after the refused reload: got %d %s, want 200", tt.name, resp.StatusCode, body)
		}
	}
}

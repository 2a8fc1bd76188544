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

	"github.com/portico-gateway/portico/internal/certtest"
	"github.com/portico-gateway/portico/internal/config"
)

// pki is the material of the client certificate tests: a CA for the
// server, a client CA with a CRL, and certificates it issued.
type pki struct {
	dir                                   string
	serverCA, clientCA, otherCA           *certtest.CA
	server                                *certtest.Cert
	valid, uri, revoked, expired, server2 *certtest.Cert
	foreign                               *certtest.Cert // issued by otherCA
	caFile, crlFile                       string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.serverCA = certtest.NewCA(t, "server CA")
	p.clientCA = certtest.NewCA(t, "client CA")
	p.otherCA = certtest.NewCA(t, "other CA")
	p.server = p.serverCA.Server(t)
	p.valid = p.clientCA.Issue(t, certtest.Options{CommonName: "billing"})
	p.uri = p.clientCA.Issue(t, certtest.Options{CommonName: "reports", URIs: []string{"spiffe://example.org/reports"}})
	p.revoked = p.clientCA.Issue(t, certtest.Options{CommonName: "revoked"})
	p.expired = p.clientCA.Issue(t, certtest.Options{CommonName: "expired",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	// A certificate for servers only: not for client authentication.
	p.server2 = p.clientCA.Issue(t, certtest.Options{CommonName: "server-only", Server: true})
	p.foreign = p.otherCA.Issue(t, certtest.Options{CommonName: "billing"})
	p.caFile = certtest.WriteFile(t, p.dir, "clients.pem", p.clientCA.PEM())
	p.crlFile = certtest.WriteFile(t, p.dir, "clients.crl",
		certtest.CRLPEM(p.clientCA.CRL(t, time.Now().Add(24*time.Hour), p.revoked.Cert)))
	return p
}

// serve opens a TLS listener with client_auth ca (nil: none) that
// answers with the common name of the verified client certificate, or
// "-" without one.
func (p *pki) serve(t *testing.T, ca *config.ClientAuth) (*Listener, string) {
	t.Helper()
	certFile, keyFile := p.server.WriteFiles(t, p.dir, "server")
	l, err := Open(Options{
		Config: config.Listener{Name: "mtls", Listen: "127.0.0.1:0",
			TLS: &config.TLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.2", ClientAuth: ca}},
		Server: config.Server{ReadHeaderTimeout: config.Duration(5 * time.Second)},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.VerifiedChains) == 0 {
				_, _ = io.WriteString(w, "-")
				return
			}
			_, _ = io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Serve()
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l, "https://" + l.Addr() + "/"
}

// client returns a client that presents cert (nil: none) whenever the
// server asks for one, and keeps its connections and TLS sessions.
func (p *pki) client(t *testing.T, cert *certtest.Cert, maxVersion uint16) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.serverCA.Pool(), ServerName: "localhost", MaxVersion: maxVersion,
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	if cert != nil {
		// Presented whatever CAs the server names (a Go client would
		// otherwise keep a certificate of another CA to itself).
		c := cert.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get returns the status and body of GET url, or the error.
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClientAuthHandshakes(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	_, require := p.serve(t, &config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{p.crlFile}})
	_, request := p.serve(t, &config.ClientAuth{Mode: config.ClientAuthRequest, CAFiles: []string{p.caFile},
		CRLFiles: []string{p.crlFile}})
	_, none := p.serve(t, nil)
	tests := []struct {
		name string
		url  string
		cert *certtest.Cert
		want string // the common name the handler saw; "" for a failed handshake
	}{
		{"require: no certificate", require, nil, ""},
		{"require: valid", require, p.valid, "billing"},
		{"require: revoked", require, p.revoked, ""},
		{"require: another CA", require, p.foreign, ""},
		{"require: expired", require, p.expired, ""},
		{"require: not for client authentication", require, p.server2, ""},
		{"request: no certificate", request, nil, "-"},
		{"request: valid", request, p.uri, "reports"},
		{"request: another CA", request, p.foreign, ""},
		{"request: revoked", request, p.revoked, ""},
		{"request: expired", request, p.expired, ""},
		{"no client_auth: a certificate is not asked for", none, p.valid, "-"},
	}
	for _, tt := range tests {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			status, body, err := get(p.client(t, tt.cert, version), tt.url)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("%s (%s): got %d %q, want a failed handshake", tt.name, tls.VersionName(version), status, body)
			case tt.want != "" && err != nil:
				t.Errorf("%s (%s): got %s, want %q", tt.name, tls.VersionName(version), err, tt.want)
			case tt.want != "" && (status != 200 || body != tt.want):
				t.Errorf("%s (%s): got %d %q, want 200 %q", tt.name, tls.VersionName(version), status, body, tt.want)
			}
		}
	}
}

// TestClientAuthReloadReachesOpenConnections revokes a certificate by a
// reload (SetClientAuth): a connection opened before gets 421 and is
// closed, a resumed session is refused, and a new handshake fails.
func TestClientAuthReloadReachesOpenConnections(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	l, url := p.serve(t, &config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{p.crlFile}})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		l.SetClientAuth(mustLoad(t, &config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{p.crlFile}}))
		c := p.client(t, p.valid, version)
		if status, body, err := get(c, url); err != nil || status != 200 || body != "billing" {
			t.Fatalf("%s: before the reload: got %d %q %v, want 200 billing", tls.VersionName(version), status, body, err)
		}
		crl := certtest.WriteFile(t, p.dir, "now-revoked.crl",
			p.clientCA.CRL(t, time.Now().Add(time.Hour), p.revoked.Cert, p.valid.Cert)) // DER
		l.SetClientAuth(mustLoad(t, &config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{crl}}))

		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("%s: the open connection: %s", tls.VersionName(version), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(string(body), "no longer accepted") {
			t.Errorf("%s: the open connection: got %d %s, want 421", tls.VersionName(version), resp.StatusCode, body)
		}
		// The connection is closed; the next request opens another,
		// which may resume the session: refused either way.
		if status, body, err := get(c, url); err == nil {
			t.Errorf("%s: after the reload: got %d %q, want a failed handshake", tls.VersionName(version), status, body)
		}
		if status, body, err := get(p.client(t, p.valid, version), url); err == nil {
			t.Errorf("%s: a new client after the reload: got %d %q, want a failed handshake", tls.VersionName(version), status, body)
		}
		// Without client_auth, no certificate is asked for any more.
		l.SetClientAuth(nil)
		if status, body, err := get(p.client(t, p.valid, version), url); err != nil || body != "-" {
			t.Errorf("%s: client_auth turned off: got %d %q %v, want 200 without a certificate", tls.VersionName(version), status, body, err)
		}
	}
}

// TestClientAuthSessionResumption checks that a session resumed after a
// reload is held to the new policy: resumption works while the
// certificate is accepted and fails once it is revoked.
func TestClientAuthSessionResumption(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	l, _ := p.serve(t, &config.ClientAuth{CAFiles: []string{p.caFile}})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		l.SetClientAuth(mustLoad(t, &config.ClientAuth{CAFiles: []string{p.caFile}}))
		cfg := &tls.Config{RootCAs: p.serverCA.Pool(), ServerName: "localhost", MaxVersion: version,
			ClientSessionCache: tls.NewLRUClientSessionCache(8), Certificates: []tls.Certificate{p.valid.TLS()}}
		dial := func() (resumed bool, err error) {
			conn, err := tls.Dial("tcp", l.Addr(), cfg)
			if err != nil {
				return false, err
			}
			defer conn.Close()
			// A request and its answer: the server's verdict on the
			// certificate (TLS 1.3 sends it after the client's
			// handshake) and the session ticket both arrive by then.
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
				return false, err
			}
			b, err := io.ReadAll(conn)
			if err == nil && !strings.HasSuffix(string(b), "billing") {
				err = errors.New("unexpected answer: " + string(b))
			}
			return conn.ConnectionState().DidResume, err
		}
		if _, err := dial(); err != nil {
			t.Fatalf("%s: first connection: %s", tls.VersionName(version), err)
		}
		if resumed, err := dial(); err != nil || !resumed {
			t.Fatalf("%s: second connection: resumed %v, err %v; want a resumed session", tls.VersionName(version), resumed, err)
		}
		crl := certtest.WriteFile(t, p.dir, "revokes-valid.crl",
			certtest.CRLPEM(p.clientCA.CRL(t, time.Now().Add(time.Hour), p.valid.Cert)))
		l.SetClientAuth(mustLoad(t, &config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{crl}}))
		if _, err := dial(); err == nil {
			t.Errorf("%s: after revocation: got a connection, want it refused", tls.VersionName(version))
		}
	}
}

// TestClientAuthExpiredCRLFailsClosed lets a loaded CRL pass its next
// update: certificates of its CA are refused until a current one is
// loaded; the same CRL does not load.
func TestClientAuthExpiredCRLFailsClosed(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	l, url := p.serve(t, nil)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	crl := certtest.WriteFile(t, p.dir, "short.crl",
		certtest.CRLPEM(p.clientCA.CRL(t, time.Now().Add(time.Hour), p.revoked.Cert)))
	ca, err := loadClientAuth(&config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{crl}}, config.Path{},
		func() time.Time { return time.Unix(0, now.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	l.SetClientAuth(ca)
	if status, body, err := get(p.client(t, p.valid, 0), url); err != nil || body != "billing" {
		t.Fatalf("a current CRL: got %d %q %v, want 200 billing", status, body, err)
	}
	now.Store(time.Now().Add(2 * time.Hour).UnixNano())
	if status, body, err := get(p.client(t, p.valid, 0), url); err == nil {
		t.Errorf("the CRL past its next update: got %d %q, want a failed handshake", status, body)
	}
	_, err = loadClientAuth(&config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{crl}}, config.Path{},
		func() time.Time { return time.Unix(0, now.Load()) })
	if err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("loading the expired CRL: got %v, want an error", err)
	}
}

func TestLoadClientAuthErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	otherCRL := certtest.WriteFile(t, p.dir, "other.crl", p.otherCA.CRL(t, time.Now().Add(time.Hour)))
	expired := certtest.WriteFile(t, p.dir, "expired.crl", certtest.CRLPEM(p.clientCA.CRL(t, time.Now().Add(-time.Minute))))
	notPEM := certtest.WriteFile(t, p.dir, "garbage.pem", []byte("no certificates here"))
	keyOnly := certtest.WriteFile(t, p.dir, "key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	at := config.Path{}.Index("listeners", 1).Key("tls").Key("client_auth")
	tests := []struct {
		name string
		ca   config.ClientAuth
		want string
	}{
		{"missing CA file", config.ClientAuth{CAFiles: []string{p.dir + "/missing.pem"}},
			"listeners[1].tls.client_auth.ca_files[0]: read CA file: open "},
		{"no certificate in the CA file", config.ClientAuth{CAFiles: []string{p.caFile, notPEM}},
			"listeners[1].tls.client_auth.ca_files[1]: CA file " + notPEM + ": no PEM certificate found"},
		{"a key is not a CA", config.ClientAuth{CAFiles: []string{keyOnly}},
			"listeners[1].tls.client_auth.ca_files[0]: CA file " + keyOnly + ": no PEM certificate found"},
		{"CRL of another CA", config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{p.crlFile, otherCRL}},
			"listeners[1].tls.client_auth.crl_files[1]: CRL file " + otherCRL + ": not signed by a CA of ca_files (issuer CN=other CA,O=Portico tests)"},
		{"expired CRL", config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{expired}},
			"listeners[1].tls.client_auth.crl_files[0]: CRL file " + expired + ": expired at "},
		{"not a CRL", config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{notPEM}},
			"listeners[1].tls.client_auth.crl_files[0]: CRL file " + notPEM + ": parse: "},
		{"a PEM file without a CRL", config.ClientAuth{CAFiles: []string{p.caFile}, CRLFiles: []string{keyOnly}},
			"listeners[1].tls.client_auth.crl_files[0]: CRL file " + keyOnly + ": no PEM X509 CRL found"},
	}
	for _, tt := range tests {
		_, err := LoadClientAuth(&tt.ca, at)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error starting %q", tt.name, err, tt.want)
		}
	}
	// The CA file may hold several CAs; CRLs may be PEM or DER.
	both := certtest.WriteFile(t, p.dir, "both.pem", append(p.otherCA.PEM(), p.clientCA.PEM()...))
	if _, err := LoadClientAuth(&config.ClientAuth{CAFiles: []string{both}, CRLFiles: []string{p.crlFile, otherCRL}}, at); err != nil {
		t.Errorf("two CAs, a PEM and a DER CRL: got %v, want none", err)
	}
}

func mustLoad(t *testing.T, c *config.ClientAuth) *ClientAuth {
	t.Helper()
	a, err := LoadClientAuth(c, config.Path{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestClientAuthKeepsHTTP2 checks that the per-handshake copy of the TLS
// config keeps the listener's ALPN protocols.
func TestClientAuthKeepsHTTP2(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	_, url := p.serve(t, &config.ClientAuth{CAFiles: []string{p.caFile}})
	resp, err := p.client(t, p.valid, 0).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("got %s, want HTTP/2.0", resp.Proto)
	}
}

package upstream

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// testCA is a certificate authority made at test time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf is a certificate the CA issued, with its key, in PEM and parsed.
type leaf struct {
	certPEM, keyPEM []byte
	cert            tls.Certificate
}

// issue makes a server certificate for names (DNS names or IP addresses),
// or a client certificate named cn when names is empty.
func (ca *testCA) issue(t *testing.T, cn string, names ...string) leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(names) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if l.cert, err = tls.X509KeyPair(l.certPEM, l.keyPEM); err != nil {
		t.Fatal(err)
	}
	return l
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsTarget returns an https target for addr with the TLS config built
// from c.
func tlsTarget(t *testing.T, addr string, c *config.UpstreamTLS) *Target {
	t.Helper()
	cfg, err := clientTLSConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	tg := newTarget("https://"+addr, addr, addr)
	tg.TLS = true
	tg.configure(1, 4, time.Minute)
	tg.setTLS(cfg)
	return tg
}

// httpsServer is a real HTTPS server that answers with the SNI name it
// saw and the common name of the client certificate, and counts the
// connections it accepted.
type httpsServer struct {
	*httptest.Server
	conns atomic.Int64
}

func newHTTPSServer(t *testing.T, cfg *tls.Config) *httpsServer {
	t.Helper()
	s := &httpsServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "-"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "sni=%s client=%s", r.TLS.ServerName, client)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = cfg
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *httpsServer) addr() string { return strings.TrimPrefix(s.URL, "https://") }

// get sends one GET over c and returns the response body.
func get(c *Conn) (string, error) {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: upstream\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestTLSDialVerifiesServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := newTestCA(t, "upstream CA"), newTestCA(t, "other CA")
	srv := ca.issue(t, "api", "api.internal", "127.0.0.1")
	svcOnlyName := ca.issue(t, "api", "api.internal")
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	otherFile := writeFile(t, dir, "other.pem", other.pem)

	byIP := newHTTPSServer(t, &tls.Config{Certificates: []tls.Certificate{srv.cert}})
	byName := newHTTPSServer(t, &tls.Config{Certificates: []tls.Certificate{svcOnlyName.cert}})

	tests := []struct {
		name    string
		server  *httpsServer
		tls     *config.UpstreamTLS
		wantErr any // pointer to the error type the dial fails with; nil: success
		wantSNI string
	}{
		{"trusted CA", byIP, &config.UpstreamTLS{CAFile: caFile}, nil, ""},
		{"unknown CA", byIP, &config.UpstreamTLS{CAFile: otherFile}, new(x509.UnknownAuthorityError), ""},
		{"system roots", byIP, nil, new(*tls.CertificateVerificationError), ""},
		{"name not in certificate", byName, &config.UpstreamTLS{CAFile: caFile}, new(x509.HostnameError), ""},
		{"server_name override", byName, &config.UpstreamTLS{CAFile: caFile, ServerName: "api.internal"}, nil, "api.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := tlsTarget(t, tt.server.addr(), tt.tls)
			c, err := tg.Dial(context.Background(), 5*time.Second)
			if tt.wantErr != nil {
				if err == nil {
					_ = c.Close()
					t.Fatal("got a connection, want a certificate error")
				}
				var op *net.OpError
				if !errors.As(err, &op) || op.Op != "dial" {
					t.Fatalf("got %q, want a *net.OpError with Op dial", err)
				}
				if !errors.As(err, tt.wantErr) {
					t.Fatalf("got %q, want a %T", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %s", err)
			}
			defer c.Close()
			tc, ok := c.Conn.(*tls.Conn)
			if !ok {
				t.Fatalf("got a %T, want a *tls.Conn", c.Conn)
			}
			if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Fatalf("got ALPN %q, want http/1.1", p)
			}
			body, err := get(c)
			if err != nil {
				t.Fatalf("request: %s", err)
			}
			if tt.wantSNI != "" && !strings.Contains(body, "sni="+tt.wantSNI+" ") {
				t.Fatalf("got %q, want the server to see SNI %s", body, tt.wantSNI)
			}
		})
	}
}

func TestTLSMutual(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "upstream CA")
	srv := ca.issue(t, "api", "127.0.0.1")
	client := ca.issue(t, "portico")
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile := writeFile(t, dir, "client.pem", client.certPEM)
	keyFile := writeFile(t, dir, "client.key", client.keyPEM)

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		s := newHTTPSServer(t, &tls.Config{
			Certificates: []tls.Certificate{srv.cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    ca.pool(),
			MaxVersion:   version,
		})
		name := tls.VersionName(version)
		t.Run(name+" with certificate", func(t *testing.T) {
			t.Parallel()
			tg := tlsTarget(t, s.addr(), &config.UpstreamTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile})
			c, err := tg.Dial(context.Background(), 5*time.Second)
			if err != nil {
				t.Fatalf("dial: %s", err)
			}
			defer c.Close()
			body, err := get(c)
			if err != nil || !strings.Contains(body, "client=portico") {
				t.Fatalf("got %q, %v; want the server to see client portico", body, err)
			}
		})
		t.Run(name+" without certificate", func(t *testing.T) {
			t.Parallel()
			tg := tlsTarget(t, s.addr(), &config.UpstreamTLS{CAFile: caFile})
			// TLS 1.2 fails the handshake; in TLS 1.3 the client's side of
			// the handshake ends before the server checks the certificate,
			// so the server's alert ends the first exchange.
			c, err := tg.Dial(context.Background(), 5*time.Second)
			if err == nil {
				defer c.Close()
				_, err = get(c)
			}
			if err == nil || !strings.Contains(err.Error(), "remote error: tls:") {
				t.Fatalf("got %v, want the server's TLS alert", err)
			}
		})
	}
}

func TestTLSKeepAliveAndResumption(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "upstream CA")
	srv := ca.issue(t, "api", "127.0.0.1")
	s := newHTTPSServer(t, &tls.Config{Certificates: []tls.Certificate{srv.cert}})
	caFile := writeFile(t, t.TempDir(), "ca.pem", ca.pem)
	tg := tlsTarget(t, s.addr(), &config.UpstreamTLS{CAFile: caFile})

	c, err := tg.Dial(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %s", err)
	}
	if _, err := get(c); err != nil {
		t.Fatalf("first request: %s", err)
	}
	tg.Put(c)
	ageIdle(tg)
	got := tg.Get()
	if got != c || !got.Reused() {
		t.Fatal("Get did not return the idle TLS connection")
	}
	if _, err := get(got); err != nil {
		t.Fatalf("second request: %s", err)
	}
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("got %d server connections, want 1", n)
	}
	// The first connection stored a session: the next dial resumes it.
	c2, err := tg.Dial(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %s", err)
	}
	defer c2.Close()
	if !c2.Conn.(*tls.Conn).ConnectionState().DidResume {
		t.Fatal("second dial did not resume the TLS session")
	}
	_ = got.Close()
}

// ageIdle pretends the target's idle connections have been idle for
// longer than peekAfter, so Get checks them.
func ageIdle(tg *Target) {
	tg.mu.Lock()
	for _, c := range tg.idle {
		c.idleAt = time.Now().Add(-2 * peekAfter)
	}
	tg.mu.Unlock()
}

// tlsEndpoint is a raw TLS 1.3 server: each accepted connection is
// handshaken and handed to the test. The server asks for (without
// requiring) a client certificate, so it sends its NewSessionTicket only
// after the client's handshake has returned: the ticket then sits unread
// in the client's socket.
type tlsEndpoint struct {
	ln    net.Listener
	conns chan *tls.Conn
}

func newTLSEndpoint(t *testing.T, cert tls.Certificate) *tlsEndpoint {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequestClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &tlsEndpoint{ln: ln, conns: make(chan *tls.Conn, 16)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				_ = tc.Close()
				continue
			}
			e.conns <- tc
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		close(e.conns)
		for c := range e.conns {
			_ = c.Close()
		}
	})
	return e
}

func (e *tlsEndpoint) accept(t *testing.T) *tls.Conn {
	t.Helper()
	select {
	case c := <-e.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no TLS connection accepted")
		return nil
	}
}

func TestTLSIdleConnLiveness(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "upstream CA")
	srv := ca.issue(t, "api", "127.0.0.1")
	caFile := writeFile(t, t.TempDir(), "ca.pem", ca.pem)
	e := newTLSEndpoint(t, srv.cert)
	tg := tlsTarget(t, e.ln.Addr().String(), &config.UpstreamTLS{CAFile: caFile})

	t.Run("session ticket pending", func(t *testing.T) {
		c, err := tg.Dial(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %s", err)
		}
		peer := e.accept(t)
		defer peer.Close()
		// The server's NewSessionTicket reaches the socket unread.
		awaitReadable(t, c.raw, func() bool { return peek(c.raw) == peekData })
		tg.Put(c)
		ageIdle(tg)
		got := tg.Get()
		if got != c {
			t.Fatal("an idle TLS connection with a session ticket pending was discarded")
		}
		// It still works both ways.
		go func() {
			var buf [4]byte
			if _, err := io.ReadFull(peer, buf[:]); err == nil {
				_, _ = peer.Write(buf[:])
			}
		}()
		if _, err := io.WriteString(got, "ping"); err != nil {
			t.Fatalf("write after the check: %s", err)
		}
		var buf [4]byte
		if _, err := io.ReadFull(got, buf[:]); err != nil || string(buf[:]) != "ping" {
			t.Fatalf("got %q, %v after the check, want ping", buf[:], err)
		}
		_ = got.Close()
	})

	dead := []struct {
		name string
		kill func(peer *tls.Conn)
	}{
		{"close_notify", func(p *tls.Conn) { _ = p.Close() }},
		{"closed without close_notify", func(p *tls.Conn) { _ = p.NetConn().Close() }},
		{"unexpected data", func(p *tls.Conn) { _, _ = p.Write([]byte("x")) }},
	}
	for _, tt := range dead {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tg.Dial(context.Background(), 5*time.Second)
			if err != nil {
				t.Fatalf("dial: %s", err)
			}
			defer c.Close()
			peer := e.accept(t)
			defer peer.Close()
			tt.kill(peer)
			// The ticket may come alone first: check again each time
			// more reaches the client, until what the server did has.
			awaitReadable(t, c.raw, func() bool { return !usable(c) })
		})
	}

	t.Run("closed connection skipped by Get", func(t *testing.T) {
		alive, err := tg.Dial(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %s", err)
		}
		defer e.accept(t).Close()
		closed, err := tg.Dial(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %s", err)
		}
		_ = e.accept(t).Close()
		// Wait until the close_notify sits in the socket, behind the ticket.
		awaitReadable(t, closed.raw, func() bool { return peek(closed.raw) == peekData })
		tg.Put(alive)
		tg.Put(closed) // top of the stack
		ageIdle(tg)
		awaitReadable(t, closed.raw, func() bool {
			// Get discards the closed one once its alert has arrived.
			got := tg.Get()
			if got == nil {
				t.Fatal("Get discarded the live connection too")
			}
			if got == closed {
				tg.Put(closed)
				ageIdle(tg)
				return false
			}
			return got == alive
		})
		_ = alive.Close()
	})
}

func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	l := listen(t) // accepts TCP, never answers the ClientHello
	tg := tlsTarget(t, l.ln.Addr().String(), nil)
	start := time.Now()
	_, err := tg.Dial(context.Background(), 100*time.Millisecond)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !op.Timeout() {
		t.Fatalf("got %v, want a dial timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("dial took %s with a 100ms timeout", d)
	}
}

func TestClientTLSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "upstream CA")
	a, b := ca.issue(t, "a"), ca.issue(t, "b")
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile := writeFile(t, dir, "a.pem", a.certPEM)
	keyFile := writeFile(t, dir, "a.key", a.keyPEM)
	otherKey := writeFile(t, dir, "b.key", b.keyPEM)
	garbage := writeFile(t, dir, "garbage.pem", []byte("not PEM at all\n"))
	missing := filepath.Join(dir, "missing.pem")

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			in    *config.UpstreamTLS
			check func(*tls.Config) string
		}{
			{"nil", nil, func(c *tls.Config) string {
				if c.MinVersion != tls.VersionTLS12 || c.RootCAs != nil || len(c.Certificates) != 0 {
					return "want TLS 1.2, system roots, no client certificate"
				}
				return ""
			}},
			{"1.3 and server name", &config.UpstreamTLS{MinVersion: "1.3", ServerName: "api"}, func(c *tls.Config) string {
				if c.MinVersion != tls.VersionTLS13 || c.ServerName != "api" {
					return "want TLS 1.3 and server name api"
				}
				return ""
			}},
			{"CA and client certificate", &config.UpstreamTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, func(c *tls.Config) string {
				if c.RootCAs == nil || len(c.Certificates) != 1 {
					return "want the CA pool and one client certificate"
				}
				return ""
			}},
		}
		for _, tt := range tests {
			c, err := clientTLSConfig(tt.in)
			if err != nil {
				t.Fatalf("%s: %s", tt.name, err)
			}
			if len(c.NextProtos) != 1 || c.NextProtos[0] != "http/1.1" {
				t.Fatalf("%s: got ALPN %q, want [http/1.1]", tt.name, c.NextProtos)
			}
			if msg := tt.check(c); msg != "" {
				t.Fatalf("%s: %s", tt.name, msg)
			}
		}
	})

	tests := []struct {
		name string
		in   config.UpstreamTLS
		want []string // substrings of the error
	}{
		{"missing CA file", config.UpstreamTLS{CAFile: missing}, []string{"ca_file", missing, "no such file"}},
		{"CA file without certificates", config.UpstreamTLS{CAFile: garbage}, []string{"ca_file", garbage, "no PEM certificate"}},
		{"CA file holding a key", config.UpstreamTLS{CAFile: keyFile}, []string{"ca_file", keyFile, "no PEM certificate"}},
		{"missing cert file", config.UpstreamTLS{CertFile: missing, KeyFile: keyFile}, []string{"cert_file", missing, "no such file"}},
		{"missing key file", config.UpstreamTLS{CertFile: certFile, KeyFile: missing}, []string{"key_file", missing, "no such file"}},
		{"cert file not PEM", config.UpstreamTLS{CertFile: garbage, KeyFile: keyFile}, []string{"cert_file", garbage, "no PEM certificate"}},
		{"key in the cert file", config.UpstreamTLS{CertFile: keyFile, KeyFile: keyFile}, []string{"cert_file", keyFile, "no PEM certificate"}},
		{"key file not PEM", config.UpstreamTLS{CertFile: certFile, KeyFile: garbage}, []string{"key_file", garbage, "no PEM private key"}},
		{"certificate in the key file", config.UpstreamTLS{CertFile: certFile, KeyFile: certFile}, []string{"key_file", certFile, "no PEM private key"}},
		{"key mismatch", config.UpstreamTLS{CertFile: certFile, KeyFile: otherKey}, []string{certFile, otherKey, "private key does not match public key"}},
		{"cert without key", config.UpstreamTLS{CertFile: certFile}, []string{"cert_file and key_file go together"}},
		{"bad min version", config.UpstreamTLS{MinVersion: "1.1"}, []string{"min_version", "1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			_, err := clientTLSConfig(&in)
			if err == nil {
				t.Fatalf("got no error, want one with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("got %q, want it to contain %q", err, w)
				}
			}
			// Never key material.
			for _, secret := range [][]byte{a.keyPEM, b.keyPEM} {
				body := strings.Split(string(secret), "\n")[1]
				if strings.Contains(err.Error(), body[:16]) || strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Fatalf("error %q shows key material", err)
				}
			}
		})
	}
}

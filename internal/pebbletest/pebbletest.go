// Package pebbletest runs Pebble, Let's Encrypt's ACME test server, for
// tests: a real ACME server that validates HTTP-01 and TLS-ALPN-01
// challenges by connecting back to the ports the test gives it, with
// pebble-challtestsrv as its DNS server, which answers 127.0.0.1 for
// every name. Both are module tools (go.mod's tool block), built once
// into the repository's .cache/ and reused; nothing is downloaded at test
// time (make test-deps runs go mod download).
package pebbletest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds the start of Pebble and its DNS server.
const startTimeout = 15 * time.Second

// Options configure one Pebble.
type Options struct {
	// HTTPPort and TLSPort are where Pebble validates HTTP-01 and
	// TLS-ALPN-01 challenges, on 127.0.0.1. Required.
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates. Default 90 days.
	Validity time.Duration
	// OCSPResponderURL is written into issued certificates (AIA).
	OCSPResponderURL string
}

// Pebble is one running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile is the PEM file of the CA of Pebble's own TLS certificate
	// (for tls.acme.ca_file).
	CAFile string
	mgmt   string
	hc     *http.Client
	t      testing.TB
}

// Start runs Pebble and its DNS server until t ends.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	bin := binaries(t)
	dir := modDir(t)
	dns, dnsMgmt, listen, mgmt := FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	start(t, filepath.Join(bin, "pebble-challtestsrv"), nil, "challtestsrv", dnsMgmt,
		"-dnsserver", addr(dns), "-management", addr(dnsMgmt), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	validity := uint64(90 * 24 * 3600)
	if o.Validity > 0 {
		validity = uint64(o.Validity / time.Second)
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           addr(listen),
		"managementListenAddress": addr(mgmt),
		"certificate":             filepath.Join(dir, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(dir, "test/certs/localhost/key.pem"),
		"httpPort":                o.HTTPPort,
		"tlsPort":                 o.TLSPort,
		"ocspResponderURL":        o.OCSPResponderURL,
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"profiles":                map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	b, _ := json.Marshal(cfg)
	file := filepath.Join(t.TempDir(), "pebble.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	start(t, filepath.Join(bin, "pebble"), env, "pebble", listen, "-config", file, "-dnsserver", addr(dns))
	p := &Pebble{Directory: "https://" + addr(listen) + "/dir", CAFile: filepath.Join(dir, "test/certs/pebble.minica.pem"),
		mgmt: "https://" + addr(mgmt), t: t}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(p.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("pebble CA %s: %v", p.CAFile, err)
	}
	p.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(p.hc.CloseIdleConnections)
	waitTCP(t, addr(mgmt))
	return p
}

// Roots returns a pool with Pebble's issuing root, to verify the
// certificates it issued.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.get("/roots/0")) {
		p.t.Fatal("pebble root: no PEM certificate")
	}
	return pool
}

// Intermediate returns Pebble's issuing certificate and its key, to sign
// OCSP responses for the certificates it issued.
func (p *Pebble) Intermediate() (*x509.Certificate, any) {
	cb, _ := pem.Decode(p.get("/intermediates/0"))
	kb, _ := pem.Decode(p.get("/intermediate-keys/0"))
	if cb == nil || kb == nil {
		p.t.Fatal("pebble intermediate: not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		p.t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				p.t.Fatalf("pebble intermediate key: %s", err)
			}
		}
	}
	return cert, key
}

// Status returns Pebble's status of the certificate with serial:
// "Valid" or "Revoked".
func (p *Pebble) Status(serial *big.Int) string {
	var s struct{ Status string }
	if err := json.Unmarshal(p.get("/cert-status-by-serial/"+serial.Text(16)), &s); err != nil {
		p.t.Fatalf("pebble certificate status: %s", err)
	}
	return s.Status
}

func (p *Pebble) get(path string) []byte {
	p.t.Helper()
	resp, err := p.hc.Get(p.mgmt + path)
	if err != nil {
		p.t.Fatalf("pebble %s: %s", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		p.t.Fatalf("pebble %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// FreePort returns a port free on 127.0.0.1 now, for the servers whose
// ports must be known before they start (Pebble validates on fixed
// ports).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs bin until t ends and waits until port accepts connections.
func start(t testing.TB, bin string, env []string, name string, port int, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %s", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.Dial("tcp", addr(port)); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", name, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %d within %s:\n%s", name, port, startTimeout, out.String())
		}
	}
}

func waitTCP(t testing.TB, a string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening within %s", a, startTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a port with a deadline
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const module = "github.com/letsencrypt/pebble/v2"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	modOnce   sync.Once
	pebbleDir string
)

// modDir is Pebble's module directory in the module cache (its test
// certificates live there).
func modDir(t testing.TB) string {
	t.Helper()
	modOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
		if err != nil {
			buildErr = fmt.Errorf("go list -m %s (run go mod download): %w", module, err)
			return
		}
		pebbleDir = strings.TrimSpace(string(out))
	})
	if pebbleDir == "" {
		t.Fatalf("pebble module: %v", buildErr)
	}
	return pebbleDir
}

// binaries builds pebble and pebble-challtestsrv once into
// .cache/pebble/<version> at the module root and returns that directory.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binDir, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build pebble: %s", buildErr)
	}
	return binDir
}

func build() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	version := strings.TrimSpace(string(out))
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir := filepath.Join(root, ".cache", "pebble", version)
	if ok(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", tmp+string(filepath.Separator), module+"/cmd/pebble", module+"/cmd/pebble-challtestsrv")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOPROXY=off") // built from the module cache only
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	// Another test process may have finished first: either copy will do.
	if err := os.Rename(tmp, dir); err != nil && !ok(dir) {
		return "", err
	}
	return dir, nil
}

func ok(dir string) bool {
	for _, b := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

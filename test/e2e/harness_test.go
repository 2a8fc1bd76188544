package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the portico binary TestMain builds for the whole suite.
var binPath string

// base is the head of every gateway config in the suite: both listeners on
// free loopback ports.
const base = "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n"

const (
	startTimeout = 10 * time.Second // until the "portico started" log line
	stopTimeout  = 40 * time.Second // SIGTERM until exit; above the default drain_timeout
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "portico-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "portico")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/portico")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/portico: %s\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot finds the directory of go.mod: from `go env GOMOD`, or by
// walking up from the working directory.
func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// logBuffer collects a process's output. Writers and readers may run
// concurrently; changed is closed and replaced on every write so waiters
// wake without sleeping.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the text so far and a channel closed on the next write.
func (b *logBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

func (b *logBuffer) String() string {
	s, _ := b.snapshot()
	return s
}

// JSONLines returns every complete line that is a JSON object.
func (b *logBuffer) JSONLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until cond holds for the text written so far, the timeout
// passes, or stop is closed. It reports whether cond held.
func (b *logBuffer) waitFor(timeout time.Duration, stop <-chan struct{}, cond func(string) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s, changed := b.snapshot()
		if cond(s) {
			return true
		}
		select {
		case <-changed:
		case <-stop:
			return cond(b.String())
		case <-deadline.C:
			return false
		}
	}
}

// gw is one running portico process.
type gw struct {
	t     *testing.T
	cmd   *exec.Cmd
	dir   string // the test's temp dir
	file  string // config file ("" for demo)
	addr  string // bound public address
	admin string // bound admin address ("" when off)
	// listeners are the bound addresses of the public listeners, by name.
	listeners map[string]string
	stdout    *logBuffer
	stderr    *logBuffer
	done      chan struct{} // closed when the process has exited
	exit      int
}

// startGateway writes yaml to a fresh portico.yaml and runs `portico run`
// on it until the test ends.
func startGateway(t *testing.T, yaml string, extraArgs ...string) *gw {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write config: %s", err)
	}
	g := startProcess(t, dir, append([]string{"run", "-c", file}, extraArgs...)...)
	g.file = file
	return g
}

// startProcess runs portico with args and waits for its "portico started"
// log line. A cleanup stops it with SIGTERM (SIGKILL after stopTimeout).
func startProcess(t *testing.T, dir string, args ...string) *gw {
	t.Helper()
	g := &gw{t: t, dir: dir, stdout: newLogBuffer(), stderr: newLogBuffer(), done: make(chan struct{})}
	g.cmd = exec.Command(binPath, args...)
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	g.cmd.Env = append(os.Environ(), "PORTICO_CONFIG=")
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start portico: %s", err)
	}
	go func() {
		_ = g.cmd.Wait()
		g.exit = g.cmd.ProcessState.ExitCode()
		close(g.done)
	}()
	t.Cleanup(g.stop)

	var started map[string]any
	ok := g.stderr.waitFor(startTimeout, g.done, func(string) bool {
		for _, l := range g.stderr.JSONLines() {
			if l["msg"] == "portico started" {
				started = l
				return true
			}
		}
		return false
	})
	if !ok {
		select {
		case <-g.done:
			t.Fatalf("portico exited with code %d before starting; stderr:\n%s", g.exit, g.stderr)
		default:
			t.Fatalf("no \"portico started\" log line within %s; stderr:\n%s", startTimeout, g.stderr)
		}
	}
	g.addr, _ = started["listen"].(string)
	g.admin, _ = started["admin"].(string)
	g.listeners = make(map[string]string)
	all, _ := started["listeners"].(string)
	for _, nameAddr := range strings.Fields(all) {
		name, addr, _ := strings.Cut(nameAddr, "=")
		g.listeners[name] = addr
	}
	if g.addr == "" {
		t.Fatalf("started line has no listen address: %v", started)
	}
	return g
}

// stop ends the process at cleanup and reports its output if the test
// failed.
func (g *gw) stop() {
	select {
	case <-g.done:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(stopTimeout):
			_ = g.cmd.Process.Kill()
			<-g.done
			g.t.Errorf("portico did not stop within %s of SIGTERM", stopTimeout)
		}
	}
	if g.t.Failed() {
		g.t.Logf("portico stderr (tail):\n%s", tail(g.stderr.String(), 6000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// URL returns the public URL of path.
func (g *gw) URL(path string) string { return "http://" + g.addr + path }

// AdminURL returns the admin URL of path.
func (g *gw) AdminURL(path string) string {
	if g.admin == "" {
		g.t.Fatal("the admin listener is off")
	}
	return "http://" + g.admin + path
}

// AccessLog returns the access log lines written to stdout so far.
func (g *gw) AccessLog() []map[string]any { return g.stdout.JSONLines() }

// Signal sends sig to the process.
func (g *gw) Signal(sig os.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal %s: %s", sig, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code.
func (g *gw) Wait(timeout time.Duration) int {
	g.t.Helper()
	select {
	case <-g.done:
		return g.exit
	case <-time.After(timeout):
		g.t.Fatalf("portico still running %s later", timeout)
		return -1
	}
}

// Pid returns the process id.
func (g *gw) Pid() int { return g.cmd.Process.Pid }

// writeConfig replaces the config file atomically (write beside it, then
// rename), as editors and deploy tools do.
func (g *gw) writeConfig(yaml string) {
	g.t.Helper()
	tmp := g.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		g.t.Fatalf("write config: %s", err)
	}
	if err := os.Rename(tmp, g.file); err != nil {
		g.t.Fatalf("rename config: %s", err)
	}
}

// logCount counts the gateway log lines whose msg is msg.
func (g *gw) logCount(msg string) int {
	n := 0
	for _, l := range g.stderr.JSONLines() {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// seen is one request as an upstream received it.
type seen struct {
	Method   string
	URI      string // the request target as sent on the wire
	Path     string // the escaped path
	RawQuery string
	Host     string
	Header   http.Header
	Body     []byte
}

// upstream is a real HTTP server in the test process that records every
// request. With a nil handler it reads the body and answers 200 with
// {"upstream": name} and an X-Upstream header.
type upstream struct {
	name string
	srv  *httptest.Server

	mu  sync.Mutex
	got []seen
}

func newUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{
			Method: r.Method, URI: r.RequestURI, Path: r.URL.EscapedPath(),
			RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(),
		}
		if h != nil {
			u.record(s)
			h(w, r)
			return
		}
		s.Body, _ = io.ReadAll(r.Body)
		u.record(s)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", name)
		fmt.Fprintf(w, `{"upstream":%q}`, name)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) record(s seen) {
	u.mu.Lock()
	u.got = append(u.got, s)
	u.mu.Unlock()
}

// URL is the upstream's base URL, "http://127.0.0.1:PORT".
func (u *upstream) URL() string { return u.srv.URL }

// Addr is the upstream's "127.0.0.1:PORT".
func (u *upstream) Addr() string { return u.srv.Listener.Addr().String() }

// requests returns a copy of the requests received so far.
func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

// byID returns the request received with X-Request-ID id.
func (u *upstream) byID(id string) (seen, bool) {
	for _, s := range u.requests() {
		if s.Header.Get("X-Request-ID") == id {
			return s, true
		}
	}
	return seen{}, false
}

// newClient returns a client with its own connection pool, no proxy, no
// redirects and no transparent gzip.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get sends a GET and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil, hdr...)
}

// do sends one request; hdr are name, value pairs ("Host" sets req.Host).
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("new request: %s", err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %s", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %s", method, url, err)
	}
	return resp, b
}

// checkProblem asserts that resp is a gateway-made problem document with
// the given status whose request_id is the X-Request-ID response header,
// and returns the decoded document.
func checkProblem(t *testing.T, resp *http.Response, body []byte, status int) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status: got %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type: got %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body is not JSON: %s; body %q", err, body)
	}
	if got, _ := p["status"].(float64); int(got) != status {
		t.Errorf("problem status: got %v, want %d", p["status"], status)
	}
	if title, _ := p["title"].(string); title == "" {
		t.Errorf("problem title: got %v, want a non-empty string", p["title"])
	}
	id := resp.Header.Get("X-Request-ID")
	if id == "" {
		t.Errorf("X-Request-ID response header: got none, want one")
	}
	if got, _ := p["request_id"].(string); got != id {
		t.Errorf("problem request_id: got %q, want the X-Request-ID header %q", got, id)
	}
	return p
}

// eventually calls f until it returns nil or timeout passes, and fails the
// test with f's last error. It is the one poll of these tests, for state
// inside another process (the gateway runs as its own process, on its own
// clock) that signals nothing the test could wait on; log lines are waited
// on with logBuffer.waitFor instead.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, err)
		}
		<-tick.C
	}
}

// rawRequest writes raw to a new TCP connection to addr and reads one
// response. The client library is bypassed so the request line reaches the
// gateway exactly as written.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %s", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write request: %s", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %s", firstLine(raw), err)
	}
	defer resp.Body.Close()
	// A server that refuses a request may reset the connection while the
	// body is read (unread request bytes); the status is what counts.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Logf("read body of %d response to %q: %s", resp.StatusCode, firstLine(raw), err)
	}
	return resp, b
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

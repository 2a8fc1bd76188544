// Package redistest starts a real redis-server for tests: on a free
// 127.0.0.1 port, without persistence, stopped when the test ends. Tests
// that need Redis call Start; a missing redis-server fails the test (run
// make test-deps), it never skips it.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cluster bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start runs redis-server on a free port and returns once it answers PING.
// The server is stopped and its files removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartCluster runs a one-node Redis Cluster (cluster mode on, every slot
// assigned to the node) for tests of cluster clients, and returns once the
// cluster state is ok. Restart keeps the slots.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (run make test-deps): %s", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cluster: cluster}
	t.Cleanup(s.Stop)
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pick a free port: %s", err)
		}
		s.port = port
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %s", last)
	return nil
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns "redis://127.0.0.1:port/0".
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop kills the server and waits for it to exit. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port (with empty data) and
// returns once it answers PING; it stops a running server first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("restart redis-server on port %d: %s", s.port, err)
}

// start runs the process and waits for PING; on failure it leaves no
// process behind.
func (s *Server) start() error {
	out := new(bytes.Buffer)
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning",
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", bytes.TrimSpace(out.Bytes()))
		default:
		}
		if ping(s.Addr()) == nil && (!s.cluster || clusterReady(s.Addr()) == nil) {
			s.mu.Lock()
			s.cmd, s.out, s.done = cmd, out, done
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return errors.New("redis-server did not answer PING in time")
		}
		time.Sleep(10 * time.Millisecond) // poll interval while it starts
	}
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	line, err := command(addr, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

// clusterReady assigns every slot to the node (once) and reports whether
// the cluster state is ok.
func clusterReady(addr string) error {
	info, err := command(addr, "CLUSTER INFO")
	if err != nil {
		return err
	}
	if strings.Contains(info, "cluster_slots_assigned:16384") {
		if strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		return errors.New("cluster state not ok yet")
	}
	if line, err := command(addr, "CLUSTER ADDSLOTSRANGE 0 16383"); err != nil || line != "+OK" {
		return fmt.Errorf("assign slots: %q %v", line, err)
	}
	return errors.New("slots assigned, state pending")
}

// command sends one inline command and returns the reply: the first line,
// or for a bulk string its body.
func command(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if n, convErr := strconv.Atoi(strings.TrimPrefix(line, "$")); strings.HasPrefix(line, "$") && convErr == nil && n >= 0 {
		body := make([]byte, n+2)
		if _, err := io.ReadFull(rd, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return line, nil
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

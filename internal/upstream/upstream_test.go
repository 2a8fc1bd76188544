package upstream

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// listener accepts connections on 127.0.0.1:0 and hands them to the test.
type listener struct {
	ln    net.Listener
	conns chan net.Conn
}

func listen(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{ln: ln, conns: make(chan net.Conn, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		close(l.conns)
		for c := range l.conns {
			_ = c.Close()
		}
	})
	return l
}

func (l *listener) url() string { return "http://" + l.ln.Addr().String() }

func (l *listener) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-l.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func TestRegistryServiceErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config.Service
		want string
	}{
		{"no targets", config.Service{Name: "a"}, "no targets"},
		{"ftp", config.Service{Name: "a", URL: "ftp://x"}, "scheme must be http or https"},
		{"path", config.Service{Name: "a", URL: "http://x/api"}, "no path"},
		{"credentials", config.Service{Name: "a", URL: "http://u:p@x"}, "credentials"},
		{"port", config.Service{Name: "a", URL: "http://x:99999"}, "port"},
		{"empty host", config.Service{Name: "a", URL: "http://:80"}, "missing host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRegistry(nil)
			defer r.Close()
			_, err := r.Service(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTargetAddressAndHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, addr, host string
	}{
		{"http://127.0.0.1:3001", "127.0.0.1:3001", "127.0.0.1:3001"},
		{"http://api.internal", "api.internal:80", "api.internal"},
		{"http://[::1]:8080/", "[::1]:8080", "[::1]:8080"},
	}
	r := NewRegistry(nil)
	defer r.Close()
	for _, tt := range tests {
		s, err := r.Service(config.Service{Name: tt.url, URL: tt.url})
		if err != nil {
			t.Fatal(err)
		}
		tg := s.Targets()[0]
		if tg.Addr != tt.addr || tg.Host != tt.host || tg.URL != tt.url {
			t.Errorf("%s: got addr %q host %q, want %q %q", tt.url, tg.Addr, tg.Host, tt.addr, tt.host)
		}
	}
}

func TestPickSmoothWeighted(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	defer r.Close()
	s, err := r.Service(config.Service{Name: "s", Targets: []config.Target{
		{URL: "http://a:1", Weight: 3}, {URL: "http://b:1", Weight: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 8 {
		p, err := s.Pick(&PickRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Target.Addr[:1])
	}
	if want := "a a b a a a b a"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
}

func TestPickUniformRoundRobin(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	defer r.Close()
	s, err := r.Service(config.Service{Name: "s", Targets: []config.Target{
		{URL: "http://a:1"}, {URL: "http://b:1"}, {URL: "http://c:1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				p, _ := s.Pick(&PickRequest{})
				mu.Lock()
				counts[p.Target.Addr[:1]]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, k := range []string{"a", "b", "c"} {
		if counts[k] != 300 {
			t.Errorf("target %s: got %d picks, want 300", k, counts[k])
		}
	}
}

func TestRegistryReusesTargetsAcrossReloads(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	defer r.Close()
	cfg := config.Service{Name: "s", Targets: []config.Target{{URL: "http://a:1"}, {URL: "http://b:1"}}}
	s1, _ := r.Service(cfg)
	cfg.Targets = []config.Target{{URL: "http://b:1", Weight: 5}}
	s2, _ := r.Service(cfg)
	if s1.Targets()[1] != s2.Targets()[0] {
		t.Fatal("got a new target for the same service and URL, want the same one")
	}
	if got := s2.Targets()[0].Weight(); got != 5 {
		t.Fatalf("got weight %d, want 5", got)
	}
	other, _ := r.Service(config.Service{Name: "other", URL: "http://b:1"})
	if other.Targets()[0] == s2.Targets()[0] {
		t.Fatal("got the same target for another service, want its own")
	}
}

func TestSweepClosesUnreferencedTargets(t *testing.T) {
	t.Parallel()
	l := listen(t)
	r := NewRegistry(nil)
	defer r.Close()
	old, _ := r.Service(config.Service{Name: "s", URL: l.url()})
	tg := old.Targets()[0]
	c, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	peer := l.accept(t)
	tg.Put(c)
	if tg.Idle() != 1 {
		t.Fatalf("got %d idle, want 1", tg.Idle())
	}
	next, _ := r.Service(config.Service{Name: "s2", URL: l.url()})
	r.Sweep([]*Service{next})
	if tg.Idle() != 0 {
		t.Fatalf("after sweep: got %d idle, want 0", tg.Idle())
	}
	// The idle connection was closed: the peer reads EOF.
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Fatal("peer read succeeded, want EOF")
	}
	// A swept target still dials but no longer pools.
	c2, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tg.Put(c2)
	if tg.Idle() != 0 {
		t.Fatalf("closed target pooled a connection: %d idle", tg.Idle())
	}
	// The kept service's target is untouched.
	if _, err := r.Service(config.Service{Name: "s2", URL: l.url()}); err != nil {
		t.Fatal(err)
	}
}

func TestPoolLIFOAndLimits(t *testing.T) {
	t.Parallel()
	l := listen(t)
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", URL: l.url(), MaxIdleConns: 2})
	tg := s.Targets()[0]
	var cs []*Conn
	for range 3 {
		c, err := tg.Dial(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		l.accept(t)
		cs = append(cs, c)
	}
	for _, c := range cs {
		tg.Put(c)
	}
	if tg.Idle() != 2 {
		t.Fatalf("got %d idle, want 2 (MaxIdleConns)", tg.Idle())
	}
	got := tg.Get()
	if got != cs[1] || !got.Reused() {
		t.Fatal("Get did not return the most recently returned connection")
	}
	if tg.Get() != cs[0] || tg.Get() != nil {
		t.Fatal("pool order or size is wrong")
	}
}

func TestPoolDiscardsExpiredConns(t *testing.T) {
	t.Parallel()
	l := listen(t)
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", URL: l.url(), IdleConnTimeout: config.Duration(time.Nanosecond)})
	tg := s.Targets()[0]
	c, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tg.Put(c)
	if got := tg.Get(); got != nil {
		t.Fatal("got an expired connection, want nil")
	}
}

func TestPoolDetectsPeerClose(t *testing.T) {
	t.Parallel()
	l := listen(t)
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", URL: l.url()})
	tg := s.Targets()[0]

	alive, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.accept(t)
	closed, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	peer := l.accept(t)
	_ = peer.Close()
	// Wait until the close reached the client side of the socket.
	awaitReadable(t, closed.Conn, func() bool { return !peekAlive(closed.Conn) })

	tg.Put(alive)
	tg.Put(closed) // top of the stack
	// Pretend both have been idle for longer than peekAfter.
	tg.mu.Lock()
	for _, c := range tg.idle {
		c.idleAt = time.Now().Add(-2 * peekAfter)
	}
	tg.mu.Unlock()
	if got := tg.Get(); got != alive {
		t.Fatal("Get did not skip the connection the peer closed")
	}
}

func TestPeekSeesUnexpectedData(t *testing.T) {
	t.Parallel()
	l := listen(t)
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", URL: l.url()})
	c, err := s.Targets()[0].Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := l.accept(t)
	if !peekAlive(c.Conn) {
		t.Fatal("fresh connection reported dead")
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	awaitReadable(t, c.Conn, func() bool { return !peekAlive(c.Conn) })
	// The peek consumed nothing.
	if n, err := c.Read(make([]byte, 4)); n != 1 || err != nil {
		t.Fatalf("got %d, %v after peek, want 1 byte", n, err)
	}
}

func TestRegistryCloseRefusesServices(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	_ = r.Close()
	if _, err := r.Service(config.Service{Name: "s", URL: "http://a:1"}); !errors.Is(err, errClosed) {
		t.Fatalf("got %v, want errClosed", err)
	}
}

func TestPickNoTarget(t *testing.T) {
	t.Parallel()
	var s Service
	if _, err := s.Pick(&PickRequest{}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("got %v, want ErrNoTarget", err)
	}
}

// waitTimeout bounds every wait of these tests for an event.
const waitTimeout = 5 * time.Second

// awaitReadable returns once cond holds. Between checks it blocks until
// the socket c has something new to read (bytes, or the peer's close), so
// a test of the non-blocking peek waits on the socket itself instead of
// polling it. cond may read from c, or change its deadline.
func awaitReadable(t *testing.T, c net.Conn, cond func() bool) {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if err := c.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		// The first call asks to wait for readiness, the second ends the
		// wait; a readiness left from before only costs another check.
		waited := false
		err := raw.Read(func(uintptr) bool {
			done := waited
			waited = true
			return done
		})
		_ = c.SetReadDeadline(time.Time{})
		if err != nil {
			t.Fatalf("socket: nothing new to read within %s (%s)", waitTimeout, err)
		}
	}
}

func BenchmarkPickWeighted(b *testing.B) {
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", Targets: []config.Target{
		{URL: "http://a:1", Weight: 3}, {URL: "http://b:1", Weight: 1}, {URL: "http://c:1", Weight: 2},
	}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = s.Pick(&PickRequest{})
		}
	})
}

func BenchmarkPoolGetPut(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r := NewRegistry(nil)
	defer r.Close()
	s, _ := r.Service(config.Service{Name: "s", URL: "http://" + ln.Addr().String()})
	tg := s.Targets()[0]
	c, err := tg.Dial(context.Background(), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	tg.Put(c)
	b.ReportAllocs()
	for b.Loop() {
		tg.Put(tg.Get())
	}
}

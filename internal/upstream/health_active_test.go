package upstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/eventtest"
)

// healthTarget returns a target for the plain http URL of a test server.
func healthTarget(rawURL string) *Target {
	addr := strings.TrimPrefix(rawURL, "http://")
	return newTarget(rawURL, addr, addr)
}

// awaitGoroutines waits until the process runs at most n goroutines. It is
// the one poll of these tests: a goroutine that exits signals nothing.
func awaitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d goroutines after %s, want at most %d", runtime.NumGoroutine(), waitTimeout, n)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

// healthChange is one onChange call.
type healthChange struct {
	target  *Target
	healthy bool
	at      time.Time
}

func healthChanges() (chan healthChange, func(*Target, bool)) {
	ch := make(chan healthChange, 64)
	return ch, func(t *Target, ok bool) { ch <- healthChange{t, ok, time.Now()} }
}

func nextChange(t *testing.T, ch <-chan healthChange, within time.Duration) healthChange {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(within):
		t.Fatalf("no health change within %s", within)
		return healthChange{}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
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

// hangListener accepts connections and never answers; they are closed at
// the end of the test. accepted counts them, and conns signals each.
type hangListener struct {
	ln       net.Listener
	accepted atomic.Int64
	conns    eventtest.Changes
}

// awaitAccepted waits until the listener has accepted n connections.
func (h *hangListener) awaitAccepted(t *testing.T, n int64) {
	t.Helper()
	h.conns.Await(t, waitTimeout, "connections accepted", func() bool { return h.accepted.Load() >= n })
}

func newHangListener(t *testing.T) *hangListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangListener{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			h.accepted.Add(1)
			h.conns.Changed()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return h
}

func (h *hangListener) url() string { return "http://" + h.ln.Addr().String() }

// statusServer answers every request with the status it holds and counts
// the answers per status.
type statusServer struct {
	*httptest.Server
	status atomic.Int64
	mu     sync.Mutex
	counts map[int]int
}

func newStatusServer(t *testing.T, status int) *statusServer {
	t.Helper()
	s := &statusServer{counts: make(map[int]int)}
	s.status.Store(int64(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := int(s.status.Load())
		s.mu.Lock()
		s.counts[st]++
		s.mu.Unlock()
		w.WriteHeader(st)
		_, _ = w.Write([]byte("body that the checker discards"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[status]
}

func TestActiveUnhealthyAfterThresholdAndHealthyAgain(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, 500)
	tg := healthTarget(srv.URL)
	cfg := &config.ActiveHealthCheck{
		Path:               "/health",
		Interval:           config.Duration(20 * time.Millisecond),
		Timeout:            config.Duration(5 * time.Second),
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	// The server's counts are read in onChange: probes of one target run
	// one after another, so they are exact at that moment.
	type seen struct {
		healthy bool
		n500    int
		n200    int
	}
	ch := make(chan seen, 8)
	stop := startActive("orders", cfg, []*Target{tg}, time.Second, logger, func(got *Target, ok bool) {
		if got != tg {
			t.Errorf("onChange target: got %s, want %s", got.URL, tg.URL)
		}
		ch <- seen{ok, srv.count(500), srv.count(200)}
	})
	defer stop()

	var down seen
	select {
	case down = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("target not marked unhealthy")
	}
	if down.healthy {
		t.Fatalf("first change: got healthy, want unhealthy")
	}
	if down.n500 != 3 {
		t.Errorf("failing probes before unhealthy: got %d, want 3", down.n500)
	}
	if tg.ActiveHealthy() {
		t.Errorf("ActiveHealthy after change to unhealthy: got true, want false")
	}

	srv.status.Store(200)
	var up seen
	select {
	case up = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("target not marked healthy again")
	}
	if !up.healthy {
		t.Fatalf("second change: got unhealthy, want healthy")
	}
	if up.n200 != 2 {
		t.Errorf("passing probes before healthy: got %d, want 2", up.n200)
	}
	if !tg.ActiveHealthy() {
		t.Errorf("ActiveHealthy after change to healthy: got false, want true")
	}
	stop()

	out := logs.String()
	for _, want := range []string{
		"level=WARN msg=\"upstream target unhealthy\" service=orders upstream=" + srv.URL + " status=500",
		"level=INFO msg=\"upstream target healthy\" service=orders upstream=" + srv.URL + " status=200",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log: got %q, want a line containing %q", out, want)
		}
	}
	if strings.Contains(out, "discards") {
		t.Errorf("log: got %q, want no response body in it", out)
	}
}

func TestActiveClosedPortIsUnhealthy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rawURL := "http://" + ln.Addr().String()
	_ = ln.Close()
	tg := healthTarget(rawURL)
	cfg := &config.ActiveHealthCheck{
		Path:               "/health",
		Interval:           config.Duration(20 * time.Millisecond),
		Timeout:            config.Duration(2 * time.Second),
		HealthyThreshold:   1,
		UnhealthyThreshold: 2,
	}
	var logs syncBuffer
	ch, onChange := healthChanges()
	stop := startActive("orders", cfg, []*Target{tg}, time.Second, slog.New(slog.NewTextHandler(&logs, nil)), onChange)
	defer stop()
	c := nextChange(t, ch, 5*time.Second)
	if c.healthy || tg.ActiveHealthy() {
		t.Fatalf("closed port: got healthy, want unhealthy")
	}
	stop()
	out := logs.String()
	if want := "upstream=" + rawURL + " error=\"health check: dial tcp"; !strings.Contains(out, want) {
		t.Errorf("log: got %q, want it to contain %q", out, want)
	}
}

func TestActiveProbeTimeout(t *testing.T) {
	t.Parallel()
	h := newHangListener(t)
	const timeout = 150 * time.Millisecond
	c := &activeChecker{
		target:         healthTarget(h.url()),
		path:           "/health",
		host:           "x",
		timeout:        timeout,
		connectTimeout: time.Second,
	}
	start := time.Now()
	status, err := c.probe(context.Background())
	elapsed := time.Since(start)
	if !errors.Is(err, errProbeTimeout) {
		t.Fatalf("probe error: got %q (status %d), want a timeout", err, status)
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("probe took %s, want about %s", elapsed, timeout)
	}
	if h.accepted.Load() != 1 {
		t.Errorf("connections: got %d, want 1", h.accepted.Load())
	}
}

func TestActiveHangingTargetIsUnhealthy(t *testing.T) {
	t.Parallel()
	h := newHangListener(t)
	tg := healthTarget(h.url())
	const timeout = 100 * time.Millisecond
	cfg := &config.ActiveHealthCheck{
		Path:               "/health",
		Interval:           config.Duration(20 * time.Millisecond),
		Timeout:            config.Duration(timeout),
		HealthyThreshold:   1,
		UnhealthyThreshold: 2,
	}
	ch, onChange := healthChanges()
	start := time.Now()
	stop := startActive("orders", cfg, []*Target{tg}, time.Second, nil, onChange)
	defer stop()
	c := nextChange(t, ch, 5*time.Second)
	if c.healthy {
		t.Fatal("hanging target: got healthy, want unhealthy")
	}
	// Two probes of at most the timeout each, after a start delay below
	// one interval.
	if took := c.at.Sub(start); took > 2*timeout+20*time.Millisecond+time.Second {
		t.Errorf("unhealthy after %s, want about %s", took, 2*timeout)
	}
}

func TestActiveStopInterruptsProbe(t *testing.T) {
	t.Parallel()
	h := newHangListener(t)
	cfg := &config.ActiveHealthCheck{
		Path:               "/health",
		Interval:           config.Duration(20 * time.Millisecond),
		Timeout:            config.Duration(30 * time.Second),
		HealthyThreshold:   1,
		UnhealthyThreshold: 1,
	}
	tg := healthTarget(h.url())
	stop := startActive("orders", cfg, []*Target{tg}, time.Second, nil, nil)
	h.awaitAccepted(t, 1) // the probe is in flight
	start := time.Now()
	stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stop took %s with a probe in flight, want it to interrupt the probe", took)
	}
	if !tg.ActiveHealthy() {
		t.Errorf("ActiveHealthy after an interrupted probe: got false, want true")
	}
}

func TestActiveExpectedStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		expected []int
		want     bool
	}{
		{"default 200", 200, nil, true},
		{"default 204", 204, nil, true},
		{"default 301", 301, nil, true},
		{"default 399", 399, nil, true},
		{"default 404", 404, nil, false},
		{"default 500", 500, nil, false},
		{"listed 404", 404, []int{200, 404}, true},
		{"unlisted 200", 200, []int{204}, false},
		{"listed 204", 204, []int{204}, true},
		{"unlisted 503", 503, []int{200, 404}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newStatusServer(t, tt.status)
			c := &activeChecker{
				target:         healthTarget(srv.URL),
				path:           "/health",
				host:           "x",
				timeout:        5 * time.Second,
				connectTimeout: time.Second,
				expected:       tt.expected,
			}
			status, err := c.probe(context.Background())
			if err != nil {
				t.Fatalf("probe: %s", err)
			}
			if status != tt.status {
				t.Errorf("status: got %d, want %d", status, tt.status)
			}
			if got := c.pass(status); got != tt.want {
				t.Errorf("pass(%d) with %v: got %t, want %t", status, tt.expected, got, tt.want)
			}
		})
	}
}

func TestActiveProbeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		host     string
		path     string
		wantHost string // "" means the target's host
		wantURI  string
	}{
		{"target host", "", "/health", "", "/health"},
		{"configured host", "health.internal.example", "/health", "health.internal.example", "/health"},
		{"host with port", "api.example:8443", "/status", "api.example:8443", "/status"},
		{"query", "", "/health?full=1", "", "/health?full=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type seen struct{ method, host, uri, ua, conn string }
			reqs := make(chan seen, 16)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs <- seen{r.Method, r.Host, r.RequestURI, r.UserAgent(), strings.Join(r.Header.Values("Connection"), ",")}
			}))
			defer srv.Close()
			tg := healthTarget(srv.URL)
			cfg := &config.ActiveHealthCheck{
				Path:               tt.path,
				Host:               tt.host,
				Interval:           config.Duration(20 * time.Millisecond),
				Timeout:            config.Duration(5 * time.Second),
				HealthyThreshold:   1,
				UnhealthyThreshold: 1,
			}
			stop := startActive("orders", cfg, []*Target{tg}, time.Second, nil, nil)
			defer stop()
			var got seen
			select {
			case got = <-reqs:
			case <-time.After(5 * time.Second):
				t.Fatal("no probe arrived")
			}
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = tg.Host
			}
			want := seen{"GET", wantHost, tt.wantURI, "portico-health-check", "close"}
			if got != want {
				t.Errorf("probe: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestActiveNilConfigStartsNothing(t *testing.T) {
	t.Parallel()
	stop := startActive("orders", nil, []*Target{healthTarget("http://127.0.0.1:1")}, time.Second, nil, nil)
	stop()
	stop()
}

// TestActiveStopLeavesNoGoroutine is not parallel: it counts the
// process's goroutines.
func TestActiveStopLeavesNoGoroutine(t *testing.T) {
	// Each flipping server answers 200 and 500 in turn, so with thresholds
	// of one every probe of its target changes the target's state and
	// calls onChange: a probe after stop would show as a call after stop.
	var targets []*Target
	for range 4 {
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%2 == 0 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}))
		t.Cleanup(srv.Close)
		targets = append(targets, healthTarget(srv.URL))
	}
	h := newHangListener(t)
	targets = append(targets, healthTarget(h.url()))
	before := runtime.NumGoroutine()

	cfg := &config.ActiveHealthCheck{
		Path:               "/health",
		Interval:           config.Duration(20 * time.Millisecond),
		Timeout:            config.Duration(time.Second),
		HealthyThreshold:   1,
		UnhealthyThreshold: 1,
	}
	var stopped atomic.Bool
	var flips, late atomic.Int64
	var flipped eventtest.Changes
	stop := startActive("orders", cfg, targets, time.Second, nil, func(*Target, bool) {
		flips.Add(1)
		if stopped.Load() {
			late.Add(1)
		}
		flipped.Changed()
	})
	h.awaitAccepted(t, 1)
	flipped.Await(t, waitTimeout, "probes of every target", func() bool { return flips.Load() >= 8 })
	stop()
	stopped.Store(true)
	stop() // idempotent

	awaitGoroutines(t, before)
	// stop waited for the checkers; TestActiveNoProbeAfterStop shows on a
	// fake clock that none runs later.
	if n := late.Load(); n != 0 {
		t.Errorf("state changes after stop: got %d, want 0", n)
	}
}

// TestActiveNoProbeAfterStop runs a checker on a fake clock: its target is
// a closed port, so no probe waits on the network, and every probe flips
// the target. After stop returned, a hundred intervals pass without one.
func TestActiveNoProbeAfterStop(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rawURL := "http://" + ln.Addr().String()
	_ = ln.Close()
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		cfg := &config.ActiveHealthCheck{
			Path:               "/health",
			Interval:           config.Duration(interval),
			Timeout:            config.Duration(time.Second),
			HealthyThreshold:   1,
			UnhealthyThreshold: 1,
		}
		var stopped atomic.Bool
		var probes, late atomic.Int64
		stop := startActive("orders", cfg, []*Target{healthTarget(rawURL)}, time.Second, nil, func(tg *Target, _ bool) {
			probes.Add(1)
			if stopped.Load() {
				late.Add(1)
			}
			tg.setActiveHealthy(true) // so that the next failing probe flips it again
		})
		time.Sleep(10 * interval) // on the bubble's clock: no real wait
		synctest.Wait()
		if n := probes.Load(); n < 5 {
			t.Fatalf("got %d probes in 10 intervals, want at least 5", n)
		}
		stop()
		stopped.Store(true)
		time.Sleep(100 * interval)
		synctest.Wait()
		if n := late.Load(); n != 0 {
			t.Errorf("probes after stop: got %d, want 0", n)
		}
	})
}

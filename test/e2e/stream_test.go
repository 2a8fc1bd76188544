package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	streamSize = 256 << 20 // bytes each way in TestStreamLargeBodies
	maxRSS     = 100 << 20 // the gateway's resident memory bound meanwhile
	// patternPeriod is the length of the repeated block the streams are
	// made of; a prime so read and write sizes never line up with it.
	patternPeriod = 65521
)

// pattern is a pseudo-random block the large streams repeat.
var pattern = func() []byte {
	b := make([]byte, patternPeriod)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// patternReader yields n bytes of the repeated pattern and hashes what it
// yields.
type patternReader struct {
	left int64
	off  int
	sum  hash.Hash32
}

func newPatternReader(n int64) *patternReader {
	return &patternReader{left: n, sum: crc32.NewIEEE()}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], pattern[r.off:])
		n += c
		r.off = (r.off + c) % len(pattern)
	}
	r.sum.Write(p)
	r.left -= int64(n)
	return n, nil
}

// rssSampler records the largest VmRSS of a process until stopped.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	max  int64
	err  error
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, err := readRSS(pid)
			if err != nil {
				s.err = err
				return
			}
			s.max = max(s.max, rss)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the largest RSS seen.
func (s *rssSampler) Stop() (int64, error) {
	close(s.stop)
	<-s.done
	return s.max, s.err
}

// readRSS returns a process's resident set size in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// TestStreamLargeBodies uploads and downloads 256 MiB through the gateway
// and checks that every byte arrives in order while the gateway's memory
// stays bounded: bodies are streamed, never buffered whole.
func TestStreamLargeBodies(t *testing.T) {
	t.Parallel()
	downloadSum := make(chan uint32, 1)
	up := newUpstream(t, "bulk", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			sum := crc32.NewIEEE()
			n, err := io.Copy(sum, r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"n":%d,"crc":%d,"err":%q,"chunked":%t}`, n, sum.Sum32(), errText(err),
				len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked")
		default:
			src := newPatternReader(streamSize)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(streamSize))
			_, _ = io.Copy(w, src)
			downloadSum <- src.sum.Sum32()
		}
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: bulk, url: %q}
routes:
  - name: bulk
    match: {paths: ["/bulk"]}
    service: bulk
    plugins:
      body_limit: {max: 0}
`, up.URL()))
	c := newClient(t)
	c.Timeout = 2 * time.Minute

	t.Run("upload", func(t *testing.T) {
		src := newPatternReader(streamSize)
		req, err := http.NewRequest(http.MethodPost, g.URL("/bulk/up"), io.NopCloser(src))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // chunked
		rss := sampleRSS(g.Pid())
		resp, err := c.Do(req)
		if err != nil {
			_, _ = rss.Stop()
			t.Fatalf("upload: %s", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		peak, rssErr := rss.Stop()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want 200; body %s", resp.StatusCode, body)
		}
		var got struct {
			N   int64
			CRC uint32
			Err string
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("upstream answer %q: %s", body, err)
		}
		if got.N != streamSize || got.CRC != src.sum.Sum32() || got.Err != "" {
			t.Errorf("upstream received %d bytes, crc %08x, err %q; want %d bytes, crc %08x",
				got.N, got.CRC, got.Err, streamSize, src.sum.Sum32())
		}
		checkRSS(t, g, peak, rssErr)
	})

	t.Run("download", func(t *testing.T) {
		rss := sampleRSS(g.Pid())
		resp, err := c.Get(g.URL("/bulk/down"))
		if err != nil {
			_, _ = rss.Stop()
			t.Fatalf("download: %s", err)
		}
		sum := crc32.NewIEEE()
		n, err := io.Copy(sum, resp.Body)
		resp.Body.Close()
		peak, rssErr := rss.Stop()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want 200", resp.StatusCode)
		}
		if err != nil {
			t.Fatalf("read body after %d bytes: %s", n, err)
		}
		var want uint32
		select {
		case want = <-downloadSum:
		case <-time.After(10 * time.Second):
			t.Fatal("upstream handler did not finish")
		}
		if n != streamSize || sum.Sum32() != want {
			t.Errorf("client received %d bytes, crc %08x; want %d bytes, crc %08x", n, sum.Sum32(), streamSize, want)
		}
		checkRSS(t, g, peak, rssErr)
	})
}

func checkRSS(t *testing.T, g *gw, peak int64, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("sample RSS: %s", err)
	}
	if peak > maxRSS {
		t.Errorf("gateway RSS during transfer: got %d MiB, want under %d MiB", peak>>20, maxRSS>>20)
	}
	after, err := readRSS(g.Pid())
	if err != nil {
		t.Fatalf("read RSS: %s", err)
	}
	if after > maxRSS {
		t.Errorf("gateway RSS after transfer: got %d MiB, want under %d MiB", after>>20, maxRSS>>20)
	}
	t.Logf("gateway RSS: peak %d MiB, after %d MiB", peak>>20, after>>20)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestServerSentEventsAreNotBuffered checks that each event reaches the
// client as soon as the upstream flushes it: the client reads event 1
// before the upstream is allowed to send event 2.
func TestServerSentEventsAreNotBuffered(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newUpstream(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, "id: 1\ndata: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return
		}
		fmt.Fprint(w, "id: 2\ndata: two\n\n")
		http.NewResponseController(w).Flush()
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: sse, url: %q}
routes:
  - name: sse
    match: {paths: ["/events"]}
    service: sse
    plugins:
      body_limit: {max: 0}
`, up.URL()))
	// The client reads in the background so that a gateway holding back
	// the response head is caught by the same deadline as one holding
	// back the event.
	c := newClient(t)
	events := make(chan string, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(events)
		resp, err := c.Get(g.URL("/events"))
		if err != nil {
			readErr <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			readErr <- fmt.Errorf("status: got %d, want 200", resp.StatusCode)
			return
		}
		br := bufio.NewReader(resp.Body)
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				readErr <- fmt.Errorf("stream ended: %w", err)
				return
			}
			if line == "\n" {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(line)
		}
	}()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatalf("first event: %s", <-readErr)
		}
		if !strings.Contains(ev, "data: one") {
			t.Fatalf("first event: got %q, want data: one", ev)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("event 1 did not reach the client while the upstream held event 2: the gateway buffers the stream")
	}
	close(release)
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatalf("second event: %s", <-readErr)
		}
		if !strings.Contains(ev, "data: two") {
			t.Fatalf("second event: got %q, want data: two", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event 2 did not arrive")
	}
}

// TestWebSocketEchoSurvivesReload round-trips messages through the gateway
// and keeps the connection open across a reload that keeps its route.
func TestWebSocketEchoSurvivesReload(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws := newUpstream(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	extra := newUpstream(t, "extra", nil)
	cfg := base + fmt.Sprintf(`services:
  - {name: ws, url: %q}
  - {name: extra, url: %q}
routes:
  - {name: ws, match: {paths: ["/ws"]}, service: ws}
`, ws.URL(), extra.URL())
	g := startGateway(t, cfg)

	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial("ws://"+g.addr+"/ws", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("websocket dial through the gateway: %s (status %d)", err, status)
	}
	defer conn.Close()
	echo := func(round int) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := range 100 {
			want := fmt.Sprintf("round %d message %d %s", round, i, strings.Repeat("x", i))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
				t.Fatalf("write message %d: %s", i, err)
			}
			mt, got, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read message %d: %s", i, err)
			}
			if mt != websocket.TextMessage || string(got) != want {
				t.Fatalf("message %d: got %d %q, want text %q", i, mt, got, want)
			}
		}
	}
	echo(1)

	g.writeConfig(cfg + "  - {name: extra, match: {paths: [\"/extra\"]}, service: extra}\n")
	g.Signal(syscall.SIGHUP)
	c := newClient(t)
	eventually(t, 5*time.Second, func() error {
		resp, _ := get(t, c, g.URL("/extra"))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /extra after reload: got %d, want 200", resp.StatusCode)
		}
		return nil
	})
	echo(2)
	err = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if err != nil {
		t.Errorf("close: %s", err)
	}
}

// TestClientDisconnectCancelsUpstreamRequest checks that when the client
// goes away, the gateway cancels its request to the upstream.
func TestClientDisconnectCancelsUpstreamRequest(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	cancelled := make(chan struct{})
	var once sync.Once
	up := newUpstream(t, "block", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			once.Do(func() { close(cancelled) })
		case <-time.After(15 * time.Second):
		}
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: block, url: %q}
routes:
  - {name: block, match: {paths: ["/block"]}, service: block}
`, up.URL()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL("/block"), nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	c := newClient(t)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("client request: got a response, want it cancelled")
	}
	select {
	case <-cancelled:
	case <-time.After(time.Second):
		t.Fatal("the upstream request was not cancelled within 1s of the client disconnecting")
	}
}

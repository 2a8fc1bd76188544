package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStalledBodiesEnd sends many request bodies that stall, and one that
// trickles below the minimum rate, on a gateway that allows only a few
// more connections than that: each gets 408 and its connection closes once
// read_body_timeout has passed, the slots come free, and other clients are
// served all along.
func TestStalledBodiesEnd(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up", nil)
	g := startGateway(t, base+fmt.Sprintf(`server:
  read_body_timeout: 400ms
  min_body_rate: 2KiB
  max_connections: 24
services:
  - {name: up, url: %q}
routes:
  - {name: up, match: {paths: ["/"]}, service: up}
`, up.URL()))
	const stalled = 20
	type outcome struct {
		status  int
		closed  bool
		elapsed time.Duration
	}
	results := make(chan outcome, stalled+1)
	var wg sync.WaitGroup
	for i := range stalled + 1 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
			if err != nil {
				t.Errorf("dial: %s", err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			start := time.Now()
			fmt.Fprintf(c, "POST /up/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial", i)
			if i == stalled {
				// A trickle: a byte every 100 ms, under the minimum rate but
				// never idle for read_body_timeout.
				go func() {
					for range 40 {
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond) // the attack: one byte every 100 ms
					}
				}()
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				results <- outcome{closed: true, elapsed: time.Since(start)}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_, err = br.ReadByte()
			results <- outcome{status: resp.StatusCode, closed: err != nil, elapsed: time.Since(start)}
		})
	}
	// Other clients keep being served while the bodies stall.
	c := newClient(t)
	for i := range 5 {
		if resp, body := get(t, c, g.URL(fmt.Sprintf("/ok/%d", i))); resp.StatusCode != 200 {
			t.Errorf("a normal request during the stall: got %d %s, want 200", resp.StatusCode, body)
		}
	}
	c.CloseIdleConnections() // its slot is needed below
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusRequestTimeout || !r.closed {
			t.Errorf("a stalled body: got status %d, closed %v after %s; want 408 and a closed connection", r.status, r.closed, r.elapsed)
		}
		if r.elapsed > 5*time.Second {
			t.Errorf("a stalled body held its connection for %s, want about read_body_timeout", r.elapsed)
		}
	}
	// The slots are free again: a full set of new connections is served.
	var ok sync.WaitGroup
	for i := range 24 {
		ok.Go(func() {
			resp, body := get(t, newClient(t), g.URL(fmt.Sprintf("/after/%d", i)))
			if resp.StatusCode != 200 {
				t.Errorf("after the stall: got %d %s, want 200", resp.StatusCode, body)
			}
		})
	}
	ok.Wait()
	for _, s := range up.requests() {
		if strings.HasPrefix(s.Path, "/up/") && len(s.Body) == 100000 {
			t.Errorf("the upstream received a whole body for %s, want the request cut off", s.Path)
		}
	}
}

// TestClientThatStopsReadingIsLetGo: a client that asks for a large
// response and never reads it is disconnected once write_timeout passes
// without progress, and the connection's slot comes free.
func TestClientThatStopsReadingIsLetGo(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 8<<20)
	up := newUpstream(t, "big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, big)
	})
	g := startGateway(t, base+fmt.Sprintf(`server:
  write_timeout: 500ms
  max_connections: 1
services:
  - {name: big, url: %q}
routes:
  - {name: big, match: {paths: ["/"]}, service: big}
`, up.URL()))
	c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// With the only slot taken by a client that reads nothing, another
	// client is served only once the gateway let the first one go.
	start := time.Now()
	resp, body := get(t, newClient(t), g.URL("/second"))
	if resp.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("the second client: got %d with %d bytes, want 200 with the whole body", resp.StatusCode, len(body))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second client waited %s for the slot, want about write_timeout", d)
	}
}

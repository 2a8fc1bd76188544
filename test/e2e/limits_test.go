package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowUpstreamIs504 checks that an upstream that does not answer within
// timeouts.response_header gets the client a quick 504 problem.
func TestSlowUpstreamIs504(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: slow, url: %q, timeouts: {response_header: 200ms}}
routes:
  - {name: slow, match: {paths: ["/slow"]}, service: slow}
`, up.URL()))
	start := time.Now()
	resp, body := get(t, newClient(t), g.URL("/slow"))
	elapsed := time.Since(start)
	checkProblem(t, resp, body, http.StatusGatewayTimeout)
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("504 after %s, want soon after the 200ms response_header timeout", elapsed)
	}
}

// TestDeadUpstreamIs502 checks that an upstream that refuses connections
// gets the client a 502 problem.
func TestDeadUpstreamIs502(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: dead, url: "http://%s", timeouts: {connect: 1s}}
routes:
  - {name: dead, match: {paths: ["/dead"]}, service: dead}
`, dead))
	start := time.Now()
	resp, body := get(t, newClient(t), g.URL("/dead"))
	p := checkProblem(t, resp, body, http.StatusBadGateway)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("502 after %s, want it quickly", elapsed)
	}
	if d, _ := p["detail"].(string); strings.Contains(d, dead) || strings.Contains(d, "connection refused") {
		t.Errorf("problem detail leaks internals: %q", d)
	}
}

// TestBodyLimit checks 413 for bodies over body_limit.max, declared or
// streamed, and that a declared one never reaches the upstream.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/upload"]}, service: api}
plugins:
  body_limit: {max: 1KiB}
`, up.URL()))
	c := newClient(t)
	small := strings.Repeat("s", 1024)
	big := strings.Repeat("b", 4096)

	t.Run("within limit", func(t *testing.T) {
		resp, body := do(t, c, http.MethodPost, g.URL("/upload"), strings.NewReader(small), "X-Request-ID", "limit-ok")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want 200; body %s", resp.StatusCode, body)
		}
		if s, ok := up.byID("limit-ok"); !ok || string(s.Body) != small {
			t.Errorf("upstream body: got %d bytes (received %t), want %d", len(s.Body), ok, len(small))
		}
	})
	t.Run("content-length", func(t *testing.T) {
		resp, body := do(t, c, http.MethodPost, g.URL("/upload"), strings.NewReader(big), "X-Request-ID", "limit-cl")
		if resp.Request.ContentLength != int64(len(big)) {
			t.Fatalf("client did not send Content-Length")
		}
		checkProblem(t, resp, body, http.StatusRequestEntityTooLarge)
		if _, ok := up.byID("limit-cl"); ok {
			t.Errorf("the upstream received a request whose declared body is over the limit")
		}
	})
	t.Run("chunked", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, g.URL("/upload"), io.NopCloser(strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Header.Set("X-Request-ID", "limit-chunked")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST chunked: %s", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkProblem(t, resp, body, http.StatusRequestEntityTooLarge)
		if s, ok := up.byID("limit-chunked"); ok && len(s.Body) > 1024 {
			t.Errorf("the upstream received %d body bytes, over the 1024 limit", len(s.Body))
		}
	})
}

// TestHeadersOverLimitAre431 checks that request headers over
// server.max_header_bytes are refused with 431.
func TestHeadersOverLimitAre431(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`server: {max_header_bytes: 4KiB}
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, up.URL()))
	c := newClient(t)
	resp, _ := get(t, c, g.URL("/small"), "X-Pad", strings.Repeat("a", 1024))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("1 KiB of headers: got %d, want 200", resp.StatusCode)
	}
	resp, body := rawRequest(t, g.addr, "GET /big HTTP/1.1\r\nHost: gw.test\r\nX-Request-ID: big-headers\r\n"+
		"X-Pad: "+strings.Repeat("a", 64<<10)+"\r\nConnection: close\r\n\r\n")
	preParseProblem(t, resp, body, http.StatusRequestHeaderFieldsTooLarge)
	// A malformed request is refused the same way, before any route.
	resp, body = rawRequest(t, g.addr, "GET /x HTTP/1.1\r\nHost: gw.test\r\nBad Header: v\r\nConnection: close\r\n\r\n")
	preParseProblem(t, resp, body, http.StatusBadRequest)
	if _, ok := up.byID("big-headers"); ok {
		t.Errorf("the upstream received a request with oversized headers")
	}
}

// preParseProblem checks a refusal made while reading the request, before
// any request id exists: problem JSON with the status, and no request id.
func preParseProblem(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(body, &p) != nil || p.Status != status || p.Title == "" {
		t.Fatalf("got %d %q %s, want %d problem JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body, status)
	}
}

// TestHealthAndReady checks the built-in probes on the public listener, at
// their default and at configured paths.
func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	t.Run("default paths", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/api"]}, service: api}
`, up.URL()))
		c := newClient(t)
		resp, body := get(t, c, g.URL("/health"))
		var h map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h["status"] != "healthy" {
			t.Errorf("GET /health: got %d %s, want 200 {\"status\":\"healthy\"}", resp.StatusCode, body)
		}
		// Probes are answered before the plugin chain, like NGINX's
		// "access_log off" location: no request id, no access log line.
		if id := resp.Header.Get("X-Request-ID"); id != "" {
			t.Errorf("GET /health: got X-Request-ID %q, want none (probes skip the chain)", id)
		}
		resp, body = get(t, c, g.URL("/ready"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /ready: got %d %s, want 200", resp.StatusCode, body)
		}
		resp, body = get(t, c, g.AdminURL("/ready"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET admin /ready: got %d %s, want 200", resp.StatusCode, body)
		}
	})
	t.Run("configured paths", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, base+fmt.Sprintf(`server: {health_path: /livez, ready_path: "off"}
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/api"]}, service: api}
`, up.URL()))
		c := newClient(t)
		resp, body := get(t, c, g.URL("/livez"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /livez: got %d %s, want 200", resp.StatusCode, body)
		}
		resp, body = get(t, c, g.URL("/ready"))
		checkProblem(t, resp, body, http.StatusNotFound)
		resp, body = get(t, c, g.URL("/health"))
		checkProblem(t, resp, body, http.StatusNotFound)
	})
}

// TestSlowlorisHeadersAreCutOff checks server.read_header_timeout: a client
// that sends its headers slower than that is disconnected.
func TestSlowlorisHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`server: {read_header_timeout: 300ms}
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, up.URL()))
	conn, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: x\r\nX-Request-ID: slowloris\r\nX-Part: 1"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, conn) // until the gateway closes the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after %s, want it closed after the 300ms read_header_timeout", time.Since(start))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("connection closed after %s, want soon after 300ms", took)
	}
	if _, ok := up.byID("slowloris"); ok {
		t.Errorf("the upstream received the unfinished request")
	}
}

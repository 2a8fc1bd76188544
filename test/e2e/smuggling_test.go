package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// smugglingGateway routes /a to upstream a and /admin to upstream admin.
// Nothing may reach either upstream with a path the gateway did not route
// there.
func smugglingGateway(t *testing.T) (g *gw, a, admin *upstream) {
	t.Helper()
	a, admin = newUpstream(t, "a", nil), newUpstream(t, "admin", nil)
	g = startGateway(t, base+fmt.Sprintf(`services:
  - {name: a, url: %q}
  - {name: admin, url: %q}
routes:
  - {name: a, match: {paths: ["/a"]}, service: a}
  - {name: admin, match: {paths: ["/admin"]}, service: admin}
`, a.URL(), admin.URL()))
	return g, a, admin
}

// exchangeRaw writes raw on one connection and reads responses until the
// gateway closes it, returning their status codes.
func exchangeRaw(t *testing.T, addr, raw string) []int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %s", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %s", err)
	}
	br := bufio.NewReader(conn)
	var codes []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the gateway neither answered nor closed the connection: %s (statuses so far %v)", err, codes)
			}
			return codes
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
}

// TestRequestSmuggling sends requests whose framing a gateway and an
// upstream could read differently. The gateway must refuse them or
// re-frame them, so that the upstream of /a never receives a request
// hidden in a body.
func TestRequestSmuggling(t *testing.T) {
	t.Parallel()
	g, a, admin := smugglingGateway(t)
	hidden := "GET /a/hidden HTTP/1.1\r\nHost: x\r\nX-Request-ID: hidden\r\n\r\n"
	tests := []struct {
		name string
		raw  string
	}{
		{"CL.TE", "POST /a/1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(5+len(hidden)) +
			"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
		{"TE.CL", "POST /a/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n", len(hidden)+2) + "ab" + hidden + "\r\n0\r\n\r\n"},
		{"obfuscated TE", "POST /a/3 HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(hidden)) +
			"\r\nTransfer-Encoding: xchunked\r\n\r\n" + hidden},
		{"TE list", "POST /a/4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\nContent-Length: " +
			fmt.Sprint(5+len(hidden)) + "\r\n\r\n0\r\n\r\n" + hidden},
		{"two content lengths", "POST /a/5 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: " +
			fmt.Sprint(len(hidden)) + "\r\n\r\n" + hidden},
		{"space before colon", "POST /a/6 HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(5+len(hidden)) +
			"\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + hidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes := exchangeRaw(t, g.addr, tt.raw+"GET /a/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			t.Logf("statuses %v", codes)
		})
	}
	// The hidden request may reach the upstream only as a request the
	// gateway itself parsed and forwarded, never inside another request's
	// body or as a second request on an upstream connection the gateway
	// did not frame.
	for _, s := range a.requests() {
		// The gateway reads /a/1 as chunked with an empty body.
		if s.Path == "/a/1" && len(s.Body) != 0 {
			t.Errorf("upstream a received %s %s with body %q, want the empty chunked body", s.Method, s.URI, s.Body)
		}
		if s.Header.Get("Transfer-Encoding") != "" && s.Header.Get("Content-Length") != "" {
			t.Errorf("upstream a received both Transfer-Encoding and Content-Length for %s", s.URI)
		}
	}
	if n := len(admin.requests()); n != 0 {
		t.Errorf("upstream admin received %d requests, want none", n)
	}
	// A request smuggled past the gateway arrives without the forwarding
	// headers the gateway sets on every request it forwards.
	for _, s := range a.requests() {
		if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("upstream a received %s %s with X-Forwarded-For %q: not forwarded by the gateway", s.Method, s.URI, got)
		}
	}
}

// TestUpgradeSmuggling checks that an upgrade the upstream refuses does not
// turn the client connection into a raw tunnel to the upstream (websocket
// smuggling): the next request on the connection is routed by the gateway.
func TestUpgradeSmuggling(t *testing.T) {
	t.Parallel()
	g, a, admin := smugglingGateway(t)

	t.Run("websocket refused by upstream", func(t *testing.T) {
		codes := exchangeRaw(t, g.addr, "GET /a/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"+
			"GET /admin/after HTTP/1.1\r\nHost: x\r\nX-Request-ID: after-ws\r\nConnection: close\r\n\r\n")
		t.Logf("statuses %v", codes)
		for _, s := range a.requests() {
			if s.Path == "/admin/after" {
				t.Errorf("upstream a received /admin/after: the refused upgrade became a tunnel")
			}
		}
		if len(codes) == 2 {
			if _, ok := admin.byID("after-ws"); !ok {
				t.Errorf("the gateway answered the second request, but not by routing it to admin")
			}
		}
	})
}

// TestH2CUpgradeSmuggling checks that an h2c upgrade request is never passed
// to the upstream. An upstream that accepts it (answers 101) would
// otherwise get a raw tunnel from the client, who could then send it any
// request past the gateway's routing and plugins (h2c smuggling).
func TestH2CUpgradeSmuggling(t *testing.T) {
	t.Parallel()
	tunnelled := make(chan string, 1)
	up := newUpstream(t, "h2c", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "h2c") {
			_, _ = io.WriteString(w, "plain")
			return
		}
		// Accept the upgrade as an h2c-capable server would, then report
		// whatever the client sends through the tunnel.
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_ = brw.Flush()
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, _ := brw.ReadString('\n')
		tunnelled <- line
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: h2c, url: %q}
routes:
  - {name: h2c, match: {paths: ["/public"]}, service: h2c}
`, up.URL()))

	conn, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, "GET /public HTTP/1.1\r\nHost: x\r\nX-Request-ID: h2c-up\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %s", err)
	}
	if s, ok := up.byID("h2c-up"); ok && strings.EqualFold(s.Header.Get("Upgrade"), "h2c") {
		t.Errorf("the upstream received Upgrade: h2c (Connection: %q); want h2c upgrades never forwarded", s.Header.Get("Connection"))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return
	}
	// The gateway relayed the 101: whatever the client sends now goes to
	// the upstream unrouted.
	_, _ = io.WriteString(conn, "GET /internal/admin HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case line := <-tunnelled:
		if line != "" {
			t.Errorf("the client reached the upstream through an h2c tunnel, past the router: the upstream read %q", line)
		}
	case <-time.After(5 * time.Second):
	}
}

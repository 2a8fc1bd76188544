package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestHopByHopHeadersAreStripped checks that hop-by-hop request headers
// (the standard ones and those named in Connection) never reach the
// upstream, and that the upstream's hop-by-hop response headers never reach
// the client.
func TestHopByHopHeadersAreStripped(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "hop", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Up-Hop")
		h.Set("X-Up-Hop", "leak")
		h.Set("Keep-Alive", "timeout=9")
		h.Set("Proxy-Authenticate", `Basic realm="upstream"`)
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("X-Up-Normal", "kept")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: hop, url: %q}
routes:
  - {name: hop, match: {paths: ["/"]}, service: hop}
`, up.URL()))

	// Sanity: the upstream really sends the headers the gateway must drop.
	direct, _ := get(t, newClient(t), up.URL()+"/direct")
	if direct.Header.Get("X-Up-Hop") != "leak" || direct.Header.Get("Keep-Alive") == "" {
		t.Fatalf("upstream does not send its hop-by-hop headers directly: %v", direct.Header)
	}

	resp, body := rawRequest(t, g.addr, "GET /hop HTTP/1.1\r\n"+
		"Host: client.example\r\n"+
		"Connection: close, X-Secret-Hop\r\n"+
		"X-Secret-Hop: leak\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: gzip\r\n"+
		"Upgrade: h2c\r\n"+
		"X-Request-ID: hop-1\r\n"+
		"X-Normal: kept\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", resp.StatusCode, body)
	}
	s, ok := up.byID("hop-1")
	if !ok {
		t.Fatalf("upstream did not receive the request")
	}
	if s.Header.Get("X-Normal") != "kept" {
		t.Errorf("X-Normal upstream: got %q, want kept", s.Header.Get("X-Normal"))
	}
	for _, name := range []string{"X-Secret-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade"} {
		if v, ok := s.Header[name]; ok {
			t.Errorf("request header %s reached the upstream: %q", name, v)
		}
	}
	if c := s.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "secret") {
		t.Errorf("Connection upstream: got %q, want no client tokens", c)
	}

	if resp.Header.Get("X-Up-Normal") != "kept" {
		t.Errorf("X-Up-Normal to client: got %q, want kept", resp.Header.Get("X-Up-Normal"))
	}
	for _, name := range []string{"X-Up-Hop", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("response header %s reached the client: %q", name, v)
		}
	}
	if c := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "x-up-hop") {
		t.Errorf("Connection to client: got %q, want no upstream tokens", c)
	}
}

// TestForgedForwardingHeadersAreReplaced checks that an untrusted client
// cannot set X-Forwarded-For/-Proto/-Host or X-Real-IP for the upstream.
func TestForgedForwardingHeadersAreReplaced(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, up.URL()))
	resp, _ := get(t, newClient(t), g.URL("/xff"),
		"Host", "shop.example",
		"X-Request-ID", "xff-untrusted",
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "evil.example",
		"X-Real-IP", "6.6.6.6",
		"Forwarded", "for=6.6.6.6;proto=https")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	s, ok := up.byID("xff-untrusted")
	if !ok {
		t.Fatal("upstream did not receive the request")
	}
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example",
	}
	for name, v := range want {
		if got := strings.Join(s.Header.Values(name), ", "); got != v {
			t.Errorf("%s upstream: got %q, want %q", name, got, v)
		}
	}
	if f := s.Header.Get("Forwarded"); strings.Contains(f, "6.6.6.6") {
		t.Errorf("Forwarded upstream: got %q, want the forged value dropped", f)
	}
}

// TestTrustedProxyForwardingHeadersAreKept checks that a trusted peer's
// X-Forwarded-* are believed: its X-Forwarded-For is extended with the peer
// and X-Real-IP is the client it names.
func TestTrustedProxyForwardingHeadersAreKept(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`trusted_proxies: ["127.0.0.1/32"]
services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
`, up.URL()))
	resp, _ := get(t, newClient(t), g.URL("/xff"),
		"Host", "edge.internal",
		"X-Request-ID", "xff-trusted",
		"X-Forwarded-For", "203.0.113.7",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "public.example")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	s, ok := up.byID("xff-trusted")
	if !ok {
		t.Fatal("upstream did not receive the request")
	}
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Real-Ip":         "203.0.113.7",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "public.example",
	}
	for name, v := range want {
		if got := strings.Join(s.Header.Values(name), ", "); got != v {
			t.Errorf("%s upstream: got %q, want %q", name, got, v)
		}
	}
}

// TestUpstreamHostHeader checks the Host the upstream sees: the target's
// host:port by default, the client's with preserve_host, and the
// configured one with host_header.
func TestUpstreamHostHeader(t *testing.T) {
	t.Parallel()
	def := newUpstream(t, "default", nil)
	keep := newUpstream(t, "preserve", nil)
	fixed := newUpstream(t, "fixed", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: default, url: %q}
  - {name: preserve, url: %q, preserve_host: true}
  - {name: fixed, url: %q, host_header: internal.svc}
routes:
  - {name: default, match: {paths: ["/default"]}, service: default}
  - {name: preserve, match: {paths: ["/preserve"]}, service: preserve}
  - {name: fixed, match: {paths: ["/fixed"]}, service: fixed}
`, def.URL(), keep.URL(), fixed.URL()))
	c := newClient(t)
	tests := []struct {
		name string
		up   *upstream
		want string
	}{
		{"default", def, def.Addr()},
		{"preserve", keep, "client.example"},
		{"fixed", fixed, "internal.svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "host-" + tt.name
			resp, _ := get(t, c, g.URL("/"+tt.name), "Host", "client.example", "X-Request-ID", id)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			}
			s, ok := tt.up.byID(id)
			if !ok {
				t.Fatal("upstream did not receive the request")
			}
			if s.Host != tt.want {
				t.Errorf("upstream Host: got %q, want %q", s.Host, tt.want)
			}
		})
	}
}

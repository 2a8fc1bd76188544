package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pathFormsGateway runs a gateway with a plain and a TLS listener, an
// /admin route that refuses every client (ip_restriction denies
// 127.0.0.1), and an open / route. Nothing may reach the admin upstream,
// and the open upstream must never receive a path that a lenient backend
// reads as /admin.
// services and routes are YAML list items appended to those lists.
func pathFormsGateway(t *testing.T, services, routes string) (g *gw, roots *x509.CertPool, open, admin *upstream) {
	t.Helper()
	open, admin = newUpstream(t, "open", nil), newUpstream(t, "admin", nil)
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	g = startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: plain, listen: "127.0.0.1:0"}
  - name: secure
    listen: "127.0.0.1:0"
    tls: {cert_file: %q, key_file: %q}
services:
  - {name: open, url: %q}
  - {name: admin, url: %q}
%sroutes:
  - name: admin
    match: {paths: ["/admin"]}
    service: admin
    plugins: {ip_restriction: {deny: ["127.0.0.1"]}}
  - {name: open, match: {paths: ["/"]}, service: open}
%s`, certFile, keyFile, open.URL(), admin.URL(), services, routes))
	return g, roots, open, admin
}

// pathFormsListeners are the two HTTP/1.1 servers: the lean one on the
// plain listener and net/http on the TLS one.
func pathFormsListeners(g *gw, roots *x509.CertPool) []struct {
	name string
	send func(t *testing.T, raw string) (*http.Response, []byte)
} {
	return []struct {
		name string
		send func(t *testing.T, raw string) (*http.Response, []byte)
	}{
		{"plain", func(t *testing.T, raw string) (*http.Response, []byte) {
			return rawRequest(t, g.listeners["plain"], raw)
		}},
		{"tls", func(t *testing.T, raw string) (*http.Response, []byte) {
			return rawTLSRequest(t, g.listeners["secure"], roots, raw)
		}},
	}
}

// rawTLSRequest is rawRequest over TLS, with ALPN asking for HTTP/1.1.
func rawTLSRequest(t *testing.T, addr string, roots *x509.CertPool, raw string) (*http.Response, []byte) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Logf("read body of %d response to %q: %s", resp.StatusCode, firstLine(raw), err)
	}
	return resp, b
}

// TestPathFormsLenientBackendsReadDifferently sends, on both HTTP/1.1
// servers, request targets that a backend decoding twice, stripping
// ";" parameters or decoding overlong UTF-8 would read as another path.
// Each is refused with 400 problem JSON, or routed by the same path the
// upstream then receives.
func TestPathFormsLenientBackendsReadDifferently(t *testing.T) {
	t.Parallel()
	g, roots, open, admin := pathFormsGateway(t, "", "")
	tests := []struct {
		name, target string
		want         int // 400: refused; otherwise routed, with this status
	}{
		// Double percent-encoding.
		{"double-encoded dots", "/x/%252e%252e/admin", 400},
		{"double-encoded dots upper", "/x/%252E%252E/admin", 400},
		{"double-encoded slash", "/x/..%252fadmin", 400},
		{"double-encoded backslash", "/x/..%255cadmin", 400},
		{"double-encoded letter", "/%2541dmin", 400},
		{"double-encoded percent", "/%2525%32%65", 400},
		{"double encoding with encoded digits", "/x/%25%32%65%25%32%65/admin", 400},
		{"double encoding split", "/x/%252%65%252%65/admin", 400},
		// Overlong and invalid UTF-8.
		{"overlong dots", "/x/%c0%ae%c0%ae/admin", 400},
		{"overlong dots three bytes", "/x/%e0%80%ae%e0%80%ae/admin", 400},
		{"overlong slash", "/x/..%c0%afadmin", 400},
		{"overlong backslash", "/x/..%c1%9cadmin", 400},
		{"lone continuation byte", "/%80admin", 400},
		{"truncated sequence", "/admin%c3", 400},
		{"truncated three-byte sequence", "/a%e2%82/admin", 400},
		{"surrogate", "/%ed%a0%80/admin", 400},
		{"raw UTF-8", "/caf\xc3\xa9", 400},
		{"raw overlong dot", "/x/\xc0\xae\xc0\xae/admin", 400},
		// Path parameters.
		{"parameter", "/admin;x", 400},
		{"encoded parameter", "/admin%3bx", 400},
		{"encoded parameter upper", "/admin%3Bx", 400},
		{"parameter mid-path", "/a;b/c", 400},
		{"session parameter", "/admin;jsessionid=1/x", 400},
		{"dot dot parameter", "/x/..;/admin", 400},
		{"encoded dot dot parameter", "/x/%2e%2e%3b/admin", 400},
		// Encoded control bytes.
		{"encoded NUL", "/admin%00", 400},
		{"encoded tab", "/admin%09", 400},
		{"encoded newline", "/x%0a/admin", 400},
		{"encoded CRLF", "/admin%0d%0aX-Injected:%201", 400},
		{"encoded unit separator", "/admin%1f", 400},
		{"encoded DEL", "/admin%7f", 400},
		// Fragments.
		{"fragment", "/x#/../admin", 400},
		{"fragment after admin", "/admin#x", 400},
		// Absolute-form: the target's authority and path, as the upstream
		// gets them.
		{"absolute-form to the open route", "http://gw.test/x", 200},
		{"absolute-form without path", "http://gw.test", 200},
		{"absolute-form to admin", "http://gw.test/admin", 403},
		{"absolute-form traversal to admin", "http://gw.test/x/%2e%2e/admin", 403},
		{"absolute-form https scheme", "https://gw.test/x", 200},
		{"absolute-form with userinfo", "http://user@gw.test/x", 400},
		{"absolute-form of another scheme", "ftp://gw.test/x", 400},
		{"absolute-form without host", "http:///x", 400},
		{"authority-form without CONNECT", "gw.test:80", 400},
		{"authority-form IP without CONNECT", "127.0.0.1:80", 400},
	}
	for _, l := range pathFormsListeners(g, roots) {
		for i, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				id := fmt.Sprintf("form-%s-%d", l.name, i)
				resp, body := l.send(t, "GET "+tt.target+" HTTP/1.1\r\nHost: gw.test\r\nX-Request-ID: "+id+"\r\nConnection: close\r\n\r\n")
				switch {
				case tt.want == http.StatusBadRequest && resp.Header.Get("X-Request-ID") == "":
					// Refused by the HTTP server before the gateway saw it.
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("GET %q: got %d, want 400; body %s", tt.target, resp.StatusCode, body)
					}
				default:
					if tt.want != http.StatusOK {
						checkProblem(t, resp, body, tt.want)
					} else if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET %q: got %d, want 200; body %s", tt.target, resp.StatusCode, body)
					}
				}
				_, reached := open.byID(id)
				if reached != (tt.want == http.StatusOK) {
					t.Errorf("GET %q: open upstream received it: %v, want %v", tt.target, reached, tt.want == http.StatusOK)
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := len(admin.requests()); n != 0 {
			t.Errorf("admin upstream received %d requests, want none: its route refuses every client", n)
		}
		for _, s := range open.requests() {
			for _, p := range lenientReadings(s.URI) {
				if p == "/admin" || strings.HasPrefix(p, "/admin/") {
					t.Errorf("open upstream received %q, which a lenient backend reads as %q", s.URI, p)
				}
			}
		}
	})
}

// lenientReadings returns the paths a lenient backend could read in the
// request target uri: decoded once, twice and three times; with ";"
// parameters stripped (Tomcat, Spring); with "\" as "/"; with overlong
// UTF-8 dots and slashes decoded; dot segments resolved.
func lenientReadings(uri string) []string {
	p, _, _ := strings.Cut(uri, "?")
	var out []string
	for range 3 {
		for _, v := range []string{p, stripParams(p), strings.ReplaceAll(p, `\`, "/"), overlong(p)} {
			out = append(out, resolveDots(v))
		}
		p = lenientDecode(p)
	}
	return out
}

// lenientDecode decodes the valid escapes of s and keeps the rest.
func lenientDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err == nil {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// stripParams removes ";" parameters from each segment, as Tomcat does.
func stripParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// overlong decodes the overlong UTF-8 forms of "." and "/" old decoders
// accepted.
func overlong(p string) string {
	r := strings.NewReplacer("\xc0\xae", ".", "\xe0\x80\xae", ".", "\xc0\xaf", "/", "\xe0\x80\xaf", "/", "\xc1\x9c", "/")
	return r.Replace(p)
}

// resolveDots resolves "." and ".." segments and merges slashes.
func resolveDots(p string) string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// TestAbsoluteFormRoutesByTheAuthorityTheUpstreamIsTold checks RFC 9112
// section 3.2.2 on both HTTP/1.1 servers: with an absolute-form target the
// Host header is replaced by the target's authority, and the host the
// gateway routes by is the one the upstream is told (Host with
// preserve_host, X-Forwarded-Host always).
func TestAbsoluteFormRoutesByTheAuthorityTheUpstreamIsTold(t *testing.T) {
	t.Parallel()
	internal := newUpstream(t, "internal", nil)
	g, roots, open, _ := pathFormsGateway(t,
		fmt.Sprintf("  - {name: internal, url: %q, preserve_host: true}\n", internal.URL()),
		"  - {name: internal, match: {hosts: [internal.test], paths: [\"/\"]}, service: internal}\n")
	tests := []struct {
		name, target, host string
		up                 *upstream
		wantHost           string // Host the upstream receives; "" for the service's own
		wantForwarded      string // X-Forwarded-Host
	}{
		{"origin-form by Host", "/x", "internal.test", internal, "internal.test", "internal.test"},
		{"target authority replaces Host", "http://internal.test/x", "gw.test", internal, "internal.test", "internal.test"},
		{"target authority with port", "http://INTERNAL.test:8080/x", "gw.test", internal, "INTERNAL.test:8080", "INTERNAL.test:8080"},
		{"Host does not win over the target", "http://gw.test/x", "internal.test", open, "", "gw.test"},
	}
	for _, l := range pathFormsListeners(g, roots) {
		for i, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				id := fmt.Sprintf("authority-%s-%d", l.name, i)
				resp, body := l.send(t, "GET "+tt.target+" HTTP/1.1\r\nHost: "+tt.host+"\r\nX-Request-ID: "+id+"\r\nConnection: close\r\n\r\n")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s (Host %s): got %d, want 200; body %s", tt.target, tt.host, resp.StatusCode, body)
				}
				s, ok := tt.up.byID(id)
				if !ok {
					t.Fatalf("GET %s (Host %s): upstream %s did not receive it", tt.target, tt.host, tt.up.name)
				}
				if s.URI != "/x" {
					t.Errorf("upstream request target: got %q, want %q", s.URI, "/x")
				}
				if want := tt.wantHost; want != "" && s.Host != want {
					t.Errorf("upstream Host: got %q, want %q", s.Host, want)
				}
				if tt.wantHost == "" && s.Host != tt.up.Addr() {
					t.Errorf("upstream Host: got %q, want the service's %q", s.Host, tt.up.Addr())
				}
				if got := s.Header.Get("X-Forwarded-Host"); got != tt.wantForwarded {
					t.Errorf("upstream X-Forwarded-Host: got %q, want %q", got, tt.wantForwarded)
				}
			})
		}
	}
}

// TestConnectAndTraceRefusedUnlessListed checks, on both HTTP/1.1
// servers, that CONNECT and TRACE get 405 with Allow from routes that do
// not list them, and that a route listing them forwards them, CONNECT
// without a tunnel.
func TestConnectAndTraceRefusedUnlessListed(t *testing.T) {
	t.Parallel()
	g, roots, open, admin := pathFormsGateway(t, "", `  - {name: tunnel, match: {paths: ["/tunnel"], methods: [CONNECT]}, service: open}
  - {name: trace, match: {paths: ["/trace"], methods: [TRACE, GET]}, service: open}
  - {name: proxy, match: {hosts: [proxy.test], paths: ["/"], methods: [CONNECT]}, service: open}
`)
	anyAllow := "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
	tests := []struct {
		name, request string
		want          int
		allow         string
		upstream      string // the request line the open upstream receives; "" for none
	}{
		{"CONNECT authority-form", "CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443", 405, anyAllow, ""},
		{"CONNECT origin-form", "CONNECT /x HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"CONNECT to admin", "CONNECT /admin HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"TRACE to admin", "TRACE /admin/x HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"TRACE where GET is listed", "TRACE /tunnel HTTP/1.1\r\nHost: gw.test", 405, "CONNECT, " + anyAllow, ""},
		{"CONNECT to the health probe", "CONNECT /health HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"TRACE to the ready probe", "TRACE /ready HTTP/1.1\r\nHost: gw.test", 405, anyAllow, ""},
		{"TRACE listed", "TRACE /trace/a HTTP/1.1\r\nHost: gw.test", 200, "", "TRACE /trace/a"},
		{"CONNECT listed gets no tunnel", "CONNECT /tunnel HTTP/1.1\r\nHost: gw.test", 502, "", "CONNECT /tunnel"},
		{"CONNECT listed by host gets no tunnel", "CONNECT proxy.test:443 HTTP/1.1\r\nHost: proxy.test:443", 502, "", "CONNECT /"},
	}
	for _, l := range pathFormsListeners(g, roots) {
		for i, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				id := fmt.Sprintf("method-%s-%d", l.name, i)
				resp, body := l.send(t, tt.request+"\r\nX-Request-ID: "+id+"\r\nConnection: close\r\n\r\n")
				if tt.want == http.StatusOK {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: got %d, want 200; body %s", firstLine(tt.request), resp.StatusCode, body)
					}
				} else {
					checkProblem(t, resp, body, tt.want)
				}
				if got := resp.Header.Get("Allow"); got != tt.allow {
					t.Errorf("%s: got Allow %q, want %q", firstLine(tt.request), got, tt.allow)
				}
				s, ok := open.byID(id)
				switch {
				case tt.upstream == "" && ok:
					t.Errorf("%s: the open upstream received %s %s, want nothing", firstLine(tt.request), s.Method, s.URI)
				case tt.upstream != "" && !ok:
					t.Errorf("%s: the open upstream received nothing, want %s", firstLine(tt.request), tt.upstream)
				case ok && s.Method+" "+s.URI != tt.upstream:
					t.Errorf("%s: the open upstream received %s %s, want %s", firstLine(tt.request), s.Method, s.URI, tt.upstream)
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := len(admin.requests()); n != 0 {
			t.Errorf("admin upstream received %d requests, want none", n)
		}
	})
}

// TestTargetFormsAnsweredAlikeOnBothServers sends requests that the HTTP
// server or the router refuses whatever the path: each listener answers
// with the same status.
func TestTargetFormsAnsweredAlikeOnBothServers(t *testing.T) {
	t.Parallel()
	g, roots, open, _ := pathFormsGateway(t, "", "")
	tests := []struct {
		name, request string
		want          int
	}{
		{"absolute-form without Host", "GET http://gw.test/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
		{"absolute-form with a malformed Host", "GET http://gw.test/x HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n", 400},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", 400},
		{"absolute-form HTTP/1.0 without Host", "GET http://gw.test/x HTTP/1.0\r\n\r\n", 200},
		// RFC 9112 §3.2: every HTTP/1.1 request needs a Host header.
		{"CONNECT authority-form without Host", "CONNECT gw.test:443 HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
	}
	for _, l := range pathFormsListeners(g, roots) {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := l.send(t, tt.request)
				if resp.StatusCode != tt.want {
					t.Errorf("%s: got %d, want %d; body %s", firstLine(tt.request), resp.StatusCode, tt.want, body)
				}
			})
		}
	}
	t.Cleanup(func() {
		for _, s := range open.requests() {
			if s.Method != http.MethodGet || s.URI != "/x" {
				t.Errorf("open upstream received %s %s, want only GET /x", s.Method, s.URI)
			}
		}
	})
}

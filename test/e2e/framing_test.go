package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream is an upstream that reads the raw bytes the gateway sends
// with its own strict RFC 9112 reader (independent of the gateway's) and
// records every request it frames. A test fails if the bytes of one
// forwarded request frame as two, if they do not frame at all, or if a
// path arrives that the client sent hidden inside another request.
type rawUpstream struct {
	ln net.Listener

	mu       sync.Mutex
	requests []rawSeen
	aborted  []string // targets of requests cut off before their end
	errs     []string
}

// rawSeen is one request the raw upstream framed.
type rawSeen struct {
	method, target string
	header         http.Header
	body           []byte
}

func newRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { u.serve(c) })
		}
	})
	return u
}

func (u *rawUpstream) URL() string { return "http://" + u.ln.Addr().String() }

// serve frames requests on c strictly, answering each with 200.
func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for {
		if _, err := br.Peek(1); err != nil {
			return
		}
		s, err := strictRead(br)
		u.mu.Lock()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The gateway gave up on a request it had started to send
			// (its client's body turned out malformed) and closed the
			// connection: the request is incomplete, not a second one.
			u.aborted = append(u.aborted, s.target)
			u.mu.Unlock()
			return
		}
		if err != nil {
			u.errs = append(u.errs, err.Error())
			u.mu.Unlock()
			return
		}
		u.requests = append(u.requests, s)
		u.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"); err != nil {
			return
		}
	}
}

func (u *rawUpstream) seen() ([]rawSeen, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawSeen(nil), u.requests...), append([]string(nil), u.errs...)
}

func (u *rawUpstream) cutOff() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.aborted...)
}

// strictRead frames one request the way RFC 9112 says a strict recipient
// must: CRLF lines, one SP between the parts of the request line, no
// whitespace before a colon, no folding, exactly one of Content-Length and
// chunked, and a chunked body with well-formed sizes.
func strictRead(br *bufio.Reader) (rawSeen, error) {
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(l, "\r\n") || strings.ContainsAny(l[:len(l)-2], "\r\n\x00") {
			return "", fmt.Errorf("line %q is not CRLF-terminated text", l)
		}
		return l[:len(l)-2], nil
	}
	var s rawSeen
	rl, err := line()
	if err != nil {
		return s, err
	}
	parts := strings.Split(rl, " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return s, fmt.Errorf("request line %q", rl)
	}
	s.method, s.target, s.header = parts[0], parts[1], http.Header{}
	for {
		l, err := line()
		if err != nil {
			return s, err
		}
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") || l[0] == ' ' || l[0] == '\t' {
			return s, fmt.Errorf("field line %q", l)
		}
		s.header.Add(k, strings.Trim(v, " \t"))
	}
	cl, te := s.header.Values("Content-Length"), s.header.Values("Transfer-Encoding")
	switch {
	case len(cl) > 0 && len(te) > 0:
		return s, errors.New("both Content-Length and Transfer-Encoding")
	case len(te) > 0:
		if len(te) != 1 || te[0] != "chunked" {
			return s, fmt.Errorf("Transfer-Encoding %q", te)
		}
		for {
			l, err := line()
			if err != nil {
				return s, err
			}
			n, err := strconv.ParseUint(l, 16, 63)
			if err != nil {
				return s, fmt.Errorf("chunk size %q", l)
			}
			if n == 0 {
				if l, err := line(); err != nil || l != "" {
					return s, fmt.Errorf("trailer section %q (%v)", l, err)
				}
				return s, nil
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil || !bytes.HasSuffix(chunk, []byte("\r\n")) {
				return s, fmt.Errorf("chunk data (%v)", err)
			}
			s.body = append(s.body, chunk[:n]...)
		}
	case len(cl) == 1:
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return s, fmt.Errorf("Content-Length %q", cl[0])
		}
		s.body = make([]byte, n)
		_, err = io.ReadFull(br, s.body)
		return s, err
	case len(cl) > 1:
		return s, fmt.Errorf("Content-Length %q", cl)
	}
	return s, nil
}

// edgeGateway is a gateway with a plain and a TLS listener, an open route
// /a to up and a route /admin that refuses everyone (ip_restriction); a
// key_auth route /keyed to up as well.
func edgeGateway(t *testing.T, up *rawUpstream) (g *gw, roots *x509.CertPool) {
	t.Helper()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	g = startGateway(t, fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
listeners:
  - {name: plain, listen: "127.0.0.1:0"}
  - {name: tls, listen: "127.0.0.1:0", tls: {cert_file: %q, key_file: %q}}
services:
  - {name: up, url: %q}
routes:
  - {name: a, match: {paths: ["/a"]}, service: up}
  - name: admin
    match: {paths: ["/admin"]}
    service: up
    plugins: {ip_restriction: {deny: ["0.0.0.0/0", "::/0"]}}
  - name: keyed
    match: {paths: ["/keyed"]}
    service: up
    plugins: {key_auth: {}}
consumers:
  - {name: app, credentials: {api_keys: ["app-key-0123456789"]}}
`, certFile, keyFile, up.URL()))
	return g, roots
}

// listenerDialers open a raw connection to each listener of g.
func listenerDialers(g *gw, roots *x509.CertPool) map[string]func() (net.Conn, error) {
	return map[string]func() (net.Conn, error){
		"plain": func() (net.Conn, error) { return net.DialTimeout("tcp", g.listeners["plain"], 5*time.Second) },
		"tls": func() (net.Conn, error) {
			d := &net.Dialer{Timeout: 5 * time.Second}
			return tls.DialWithDialer(d, "tcp", g.listeners["tls"], &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
		},
	}
}

// exchangeOn writes raw on a connection from dial and reads responses
// until the gateway closes it.
func exchangeOn(t *testing.T, dial func() (net.Conn, error), raw string) []int {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatalf("dial: %s", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %s", err)
	}
	br := bufio.NewReader(conn)
	var codes []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the gateway neither answered nor closed the connection (statuses so far %v)", codes)
			}
			return codes
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
}

// TestFramingDifferential sends, on both listeners (the lean server's
// plain HTTP/1.1 and its HTTP/1.1 over TLS), every class of framing
// ambiguity followed by a hidden request; and then well-formed requests in
// a row. The gateway must answer each ambiguous request with one refusal
// and close, and the strict upstream must frame exactly the requests the
// gateway accepted: never the hidden one, never two where the client sent
// one.
func TestFramingDifferential(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	g, roots := edgeGateway(t, up)
	hidden := "GET /a/hidden HTTP/1.1\r\nHost: x\r\n\r\n"
	post := "POST /a/p HTTP/1.1\r\nHost: x\r\n"
	attacks := []struct {
		name, raw string
		status    int
	}{
		{"CL.TE", post + "Content-Length: " + strconv.Itoa(5+len(hidden)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"TE.CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + fmt.Sprintf("%x\r\n", len(hidden)) + hidden + "\r\n0\r\n\r\n", 400},
		{"TE not final", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"TE identity", post + "Transfer-Encoding: identity\r\nContent-Length: " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"TE obfuscated", post + "Transfer-Encoding: \tchunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n" + hidden, 400},
		{"TE gzip then chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + hidden, 501},
		{"CL repeated", post + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n" + hidden, 400},
		{"CL differing", post + "Content-Length: 0\r\nContent-Length: " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"CL malformed", post + "Content-Length: 0" + strconv.Itoa(len(hidden)) + ".0\r\n\r\n" + hidden, 400},
		{"obs-fold", post + "X-A: 1\r\n Content-Length: " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"bare LF", "POST /a/p HTTP/1.1\nHost: x\nContent-Length: " + strconv.Itoa(len(hidden)) + "\n\n" + hidden, 400},
		{"bare CR", post + "X-A: 1\rContent-Length: " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"NUL in a value", post + "X-A: 1\x00\r\n\r\n" + hidden, 400},
		{"space before colon", post + "Content-Length : " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"bad chunk size", post + "Transfer-Encoding: chunked\r\n\r\n0x" + fmt.Sprintf("%x", len(hidden)) + "\r\n" + hidden + "\r\n0\r\n\r\n", 400},
		{"chunk size with a space", post + "Transfer-Encoding: chunked\r\n\r\n " + fmt.Sprintf("%x", len(hidden)) + "\r\n" + hidden + "\r\n0\r\n\r\n", 400},
		{"bad chunk extension", post + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x", len(hidden)) + ";\r\n" + hidden + "\r\n0\r\n\r\n", 400},
		{"chunk data overrun", post + "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n" + hidden, 400},
	}
	for name, dial := range listenerDialers(g, roots) {
		for _, a := range attacks {
			codes := exchangeOn(t, dial, a.raw+"GET /a/after HTTP/1.1\r\nHost: x\r\n\r\n")
			if len(codes) != 1 || codes[0] != a.status {
				t.Errorf("%s, %s: got statuses %v, want one %d and the connection closed", name, a.name, codes, a.status)
			}
		}
		// Well-formed requests in a row on one connection: each is framed
		// by the upstream exactly once, with its own body.
		codes := exchangeOn(t, dial, "POST /a/ok-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
			"POST /a/ok-2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;n=v\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"+
			"GET /a/ok-3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if len(codes) != 3 || codes[0] != 200 || codes[1] != 200 || codes[2] != 200 {
			t.Errorf("%s, well-formed requests: got statuses %v, want 200 200 200", name, codes)
		}
	}
	got, errs := up.seen()
	if len(errs) > 0 {
		t.Errorf("the strict upstream could not frame what the gateway sent: %q", errs)
	}
	for _, target := range up.cutOff() {
		if target != "/a/p" {
			t.Errorf("the upstream received an incomplete %q; only the refused POSTs may be cut off", target)
		}
	}
	bodies := map[string]string{}
	for _, s := range got {
		if strings.Contains(s.target, "hidden") || strings.Contains(s.target, "after") {
			t.Errorf("the upstream received %s %s: a request the client hid in another", s.method, s.target)
		}
		bodies[s.target] += string(s.body) + "|"
	}
	want := map[string]string{"/a/ok-1": "hello|hello|", "/a/ok-2": "abc|abc|", "/a/ok-3": "||"}
	for target, body := range want {
		if bodies[target] != body {
			t.Errorf("upstream bodies for %s: got %q, want %q (once per listener)", target, bodies[target], body)
		}
	}
	if len(got) != 6 {
		t.Errorf("the upstream framed %d requests, want 6 (three per listener)", len(got))
	}
}

// TestHeaderOwnership checks, on both listeners, that the headers the
// gateway sets reach the upstream whatever the client sends: a client
// cannot remove them through its Connection header, forge them with an
// underscore twin, or bring its own forwarding and override headers; and
// that two credentials are refused.
func TestHeaderOwnership(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	g, roots := edgeGateway(t, up)
	for name, dial := range listenerDialers(g, roots) {
		target := "/keyed/own-" + name
		codes := exchangeOn(t, dial, "GET "+target+" HTTP/1.1\r\nHost: x\r\nX-API-Key: app-key-0123456789\r\n"+
			"X-Request-ID: client-chosen\r\n"+
			"Connection: close, X-Consumer-ID, X-Consumer-Name, X-Forwarded-For, X-Real-IP, X-Request-ID\r\n"+
			"X-Consumer-ID: mallory\r\nX_Consumer_Name: mallory\r\nX-Forwarded-Host: evil.example\r\n"+
			"X-Original-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nTrue-Client-IP: 6.6.6.6\r\n"+
			"Forwarded: for=6.6.6.6\r\nX-Forwarded-Prefix: /admin\r\n\r\n")
		if len(codes) != 1 || codes[0] != 200 {
			t.Fatalf("%s: got statuses %v, want 200", name, codes)
		}
		got, _ := up.seen()
		var s *rawSeen
		for i := range got {
			if got[i].target == target {
				s = &got[i]
			}
		}
		if s == nil {
			t.Fatalf("%s: the upstream did not receive %s (got %d requests)", name, target, len(got))
		}
		h := s.header
		if v := h.Values("X-Consumer-Id"); len(v) != 1 || v[0] != "app" {
			t.Errorf("%s: X-Consumer-ID upstream %q, want the gateway's [app]", name, v)
		}
		if v := h.Values("X-Consumer-Name"); len(v) != 1 || v[0] != "app" {
			t.Errorf("%s: X-Consumer-Name upstream %q, want the gateway's [app]", name, v)
		}
		if v := h.Get("X-Forwarded-For"); v != "127.0.0.1" {
			t.Errorf("%s: X-Forwarded-For upstream %q, want the gateway's 127.0.0.1", name, v)
		}
		if v := h.Values("X-Request-Id"); len(v) != 1 || v[0] == "" {
			t.Errorf("%s: X-Request-ID upstream %q, want one id set by the gateway", name, v)
		}
		if v := h.Get("X-Real-Ip"); v != "127.0.0.1" {
			t.Errorf("%s: X-Real-IP upstream %q, want the gateway's 127.0.0.1", name, v)
		}
		for _, k := range []string{"X_consumer_name", "X-Original-Url", "X-Http-Method-Override", "True-Client-Ip",
			"Forwarded", "X-Forwarded-Prefix"} {
			if v := h.Values(k); len(v) > 0 {
				t.Errorf("%s: %s reached the upstream as %q, want it removed", name, k, v)
			}
		}
		if v := h.Get("X-Forwarded-Host"); v != "x" {
			t.Errorf("%s: X-Forwarded-Host upstream %q, want the gateway's x", name, v)
		}
		// Two credentials are refused before any upstream sees them.
		for _, raw := range []string{
			"GET /keyed/two HTTP/1.1\r\nHost: x\r\nX-API-Key: app-key-0123456789\r\nX-API-Key: other-key-0123456789\r\nConnection: close\r\n\r\n",
			"GET /a/two HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n",
		} {
			if codes := exchangeOn(t, dial, raw); len(codes) == 0 || codes[0] != 400 {
				t.Errorf("%s: two credentials got %v, want 400", name, codes)
			}
		}
	}
	got, _ := up.seen()
	for _, s := range got {
		if strings.HasSuffix(s.target, "/two") {
			t.Errorf("the upstream received %s with two credentials", s.target)
		}
	}
}

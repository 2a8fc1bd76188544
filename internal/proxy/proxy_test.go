package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/edge"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// echo answers with what it received, in headers and body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := w.Header()
	h.Set("X-Method", r.Method)
	h.Set("X-Uri", r.RequestURI)
	h.Set("X-Host", r.Host)
	h.Set("X-Proto", r.Proto)
	h.Set("X-Te", strings.Join(r.TransferEncoding, ","))
	h.Set("X-Content-Length", fmt.Sprint(r.ContentLength))
	_, _ = w.Write(body)
}

func TestProxyRoundTrip(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)

	tests := []struct {
		name, method, path, body string
		wantURI, wantCL          string
	}{
		{"get", "GET", "/a/b", "", "/a/b", "0"},
		{"query kept", "GET", "/s?q=1&r=a%20b&q=2", "", "/s?q=1&r=a%20b&q=2", "0"},
		{"escaped path kept", "GET", "/files/a%2Fb%20c", "", "/files/a%2Fb%20c", "0"},
		{"post", "POST", "/orders", `{"id":7}`, "/orders", "8"},
		{"empty post", "POST", "/orders", "", "/orders", "0"},
		{"put", "PUT", "/orders/7", "x", "/orders/7", "1"},
		{"delete", "DELETE", "/orders/7", "", "/orders/7", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, g.URL+tt.path, body)
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("got status %d, want 200", resp.StatusCode)
			}
			if m := resp.Header.Get("X-Method"); m != tt.method {
				t.Errorf("got method %q, want %q", m, tt.method)
			}
			if u := resp.Header.Get("X-Uri"); u != tt.wantURI {
				t.Errorf("got URI %q, want %q", u, tt.wantURI)
			}
			if p := resp.Header.Get("X-Proto"); p != "HTTP/1.1" {
				t.Errorf("got upstream proto %q, want HTTP/1.1", p)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != tt.wantCL {
				t.Errorf("got upstream Content-Length %s, want %s", cl, tt.wantCL)
			}
			if string(got) != tt.body {
				t.Errorf("got body %q, want %q", got, tt.body)
			}
		})
	}
}

func TestProxyUsesUpstreamPathFromExchange(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, func(ex *pipeline.Exchange, r *http.Request) {
		ex.UpstreamPath = "/v2" + strings.TrimPrefix(ex.UpstreamPath, "/api")
	})
	resp, err := g.client.Get(g.URL + "/api/items?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("X-Uri"), "/v2/items?x=1"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	ex := g.exchange(t, 1)
	if ex.Upstream != strings.TrimPrefix(up.URL, "http://") || ex.UpstreamDuration <= 0 || ex.Err != nil {
		t.Fatalf("got Upstream %q, UpstreamDuration %v, Err %v", ex.Upstream, ex.UpstreamDuration, ex.Err)
	}
}

func TestProxyHostHeader(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	upHost := strings.TrimPrefix(up.URL, "http://")
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"target host by default", nil, upHost},
		{"preserve host", func(o *Options) { o.PreserveHost = true }, "client.example"},
		{"host header", func(o *Options) { o.HostHeader = "internal.example" }, "internal.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newProxy(t, up.URL, tt.mod)
			g := startGateway(t, h, nil)
			req, _ := http.NewRequest("GET", g.URL+"/", nil)
			req.Host = "client.example"
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Host"); got != tt.want {
				t.Fatalf("got Host %q, want %q", got, tt.want)
			}
		})
	}
}

// behindEdge puts the gateway's edge in front of h, as the gateway does:
// it removes what a client may not send (the headers its Connection header
// lists among them) before set runs, standing in for the plugins.
func behindEdge(h http.Handler, set func(r *http.Request)) http.Handler {
	return &edge.Edge{Headers: edge.NewHeaders([]string{"X-Consumer-ID"}, nil, config.UnderscoresProtected),
		Next: edge.HandlerFunc(func(st *edge.State, w http.ResponseWriter, r *http.Request) {
			st.Exchange().UpstreamPath = r.URL.EscapedPath()
			if set != nil {
				set(r)
			}
			h.ServeHTTP(w, r)
		})}
}

func TestProxyRemovesHopByHopRequestHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, behindEdge(h, nil), nil)
	resp := rawRoundTrip(t, g.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n"+
		"Connection: keep-alive, X-Private\r\nConnection: X-Other\r\nX-Private: secret\r\nX-Other: 1\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"+
		"Te: gzip, trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Keep: yes\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	hdr := <-got
	for _, k := range []string{"Connection", "X-Private", "X-Other", "Keep-Alive", "Proxy-Connection",
		"Proxy-Authorization", "Trailer", "Upgrade"} {
		if v, ok := hdr[k]; ok {
			t.Errorf("upstream got %s: %q, want none", k, v)
		}
	}
	if te := hdr.Get("Te"); te != "trailers" {
		t.Errorf("got Te %q, want %q", te, "trailers")
	}
	if v := hdr.Get("X-Keep"); v != "yes" {
		t.Errorf("got X-Keep %q, want yes", v)
	}
	if v := hdr["X-Multi"]; len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("got X-Multi %q, want [a b]", v)
	}
}

func TestProxyRemovesHopByHopResponseHeaders(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n"+
				"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: foo\r\nTe: x\r\n"+
				"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nx-lower-case: v\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	h, tg := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	for i := range 2 {
		resp, err := g.client.Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Fatalf("request %d: got body %q, want ok", i, body)
		}
		for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Te"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("client got %s: %q, want none", k, v)
			}
		}
		if v := resp.Header["Set-Cookie"]; len(v) != 2 {
			t.Errorf("got Set-Cookie %q, want both values", v)
		}
		if v := resp.Header.Get("X-Lower-Case"); v != "v" {
			t.Errorf("got X-Lower-Case %q, want v", v)
		}
	}
	if n := tg.Idle(); n != 1 {
		t.Fatalf("got %d idle upstream connections, want 1 (keep-alive reused)", n)
	}
}

func TestProxyStripsClientXForwardedFor(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	req, _ := http.NewRequest("GET", g.URL+"/", nil)
	req.Host = "public.example"
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hdr := <-got
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "public.example",
		"X-Real-Ip":         "127.0.0.1",
		"Forwarded":         "",
	}
	for k, v := range want {
		if vv := hdr[k]; strings.Join(vv, "|") != v {
			t.Errorf("got %s %q, want %q", k, vv, v)
		}
	}
}

func TestProxyAppendsXForwardedForFromTrustedPeer(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, func(ex *pipeline.Exchange, r *http.Request) {
		ex.PeerTrusted = true
		ex.ClientIP = netip.MustParseAddr("203.0.113.9")
	})

	req, _ := http.NewRequest("GET", g.URL+"/", nil)
	req.Host = "edge.example"
	req.Header.Add("X-Forwarded-For", "203.0.113.9")
	req.Header.Add("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "api.example")
	req.Header.Set("Forwarded", "for=203.0.113.9")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hdr := <-got
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 10.0.0.1, 127.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "api.example",
		"X-Real-Ip":         "203.0.113.9",
		"Forwarded":         "",
	}
	for k, v := range want {
		if vv := hdr[k]; strings.Join(vv, "|") != v {
			t.Errorf("got %s %q, want %q", k, vv, v)
		}
	}

	// Without forwarding headers, the gateway sets its own.
	resp, err = g.client.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hdr = <-got
	u, _ := url.Parse(g.URL)
	want = map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  u.Host,
	}
	for k, v := range want {
		if vv := hdr[k]; strings.Join(vv, "|") != v {
			t.Errorf("got %s %q, want %q", k, vv, v)
		}
	}
}

func TestProxyChunkedRequestBody(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	pr, pw := io.Pipe()
	go func() {
		for i := range 5 {
			fmt.Fprintf(pw, "part%d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", g.URL+"/upload", pr)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if te := resp.Header.Get("X-Te"); te != "chunked" {
		t.Errorf("got upstream Transfer-Encoding %q, want chunked", te)
	}
	if want := "part0;part1;part2;part3;part4;"; string(body) != want {
		t.Errorf("got body %q, want %q", body, want)
	}
}

func TestProxyChunkedResponseWithTrailers(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "chunk%d\n", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	t.Cleanup(up.Close)
	h, tg := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	for range 2 {
		resp, err := g.client.Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "chunk0\nchunk1\nchunk2\n"; string(body) != want {
			t.Fatalf("got body %q, want %q", body, want)
		}
		if resp.ContentLength != -1 {
			t.Errorf("got ContentLength %d, want -1 (chunked)", resp.ContentLength)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
			t.Errorf("got trailer X-Checksum %q, want abc", got)
		}
		if got := resp.Trailer.Get("X-Late"); got != "late" {
			t.Errorf("got trailer X-Late %q, want late", got)
		}
	}
	if n := tg.Idle(); n != 1 {
		t.Fatalf("got %d idle upstream connections, want 1", n)
	}
}

func TestProxyNoBodyResponses(t *testing.T) {
	t.Parallel()
	up, cc := countedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("Content-Type", "text/plain")
			if r.Method != http.MethodHead {
				_, _ = w.Write(make([]byte, 1234))
			}
		}
	}))
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	tests := []struct {
		method, path string
		status       int
		cl           int64
	}{
		{"HEAD", "/", 200, 1234},
		{"GET", "/204", 204, 0},
		{"GET", "/304", 304, 0},
		{"GET", "/", 200, 1234},
		{"HEAD", "/", 200, 1234},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, g.URL+tt.path, nil)
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: got status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if tt.method == "HEAD" && resp.ContentLength != tt.cl {
			t.Errorf("%s %s: got Content-Length %d, want %d", tt.method, tt.path, resp.ContentLength, tt.cl)
		}
		wantBody := 0
		if tt.method == "GET" && tt.status == 200 {
			wantBody = 1234
		}
		if len(body) != wantBody {
			t.Errorf("%s %s: got %d body bytes, want %d", tt.method, tt.path, len(body), wantBody)
		}
	}
	if opened, _ := cc.counts(); opened != 1 {
		t.Fatalf("got %d upstream connections, want 1 (bodyless responses keep the connection)", opened)
	}
}

func TestProxyReusesConnections(t *testing.T) {
	t.Parallel()
	up, cc := countedUpstream(t, http.HandlerFunc(echo))
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	for i := range 100 {
		var body io.Reader
		if i%2 == 1 {
			body = strings.NewReader("payload")
		}
		req, _ := http.NewRequest("POST", g.URL+"/", body)
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: got status %d, want 200", i, resp.StatusCode)
		}
	}
	if opened, _ := cc.counts(); opened != 1 {
		t.Fatalf("got %d upstream connections for 100 sequential requests, want 1", opened)
	}
}

func TestProxyExpectContinue(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	c, err := net.Dial("tcp", g.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("got status %d, want 100 from the gateway before the body", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("got %d %q, want 200 hello", resp.StatusCode, body)
	}
}

func TestProxySkipsInformationalResponses(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
	})
	h, _ := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	resp, err := g.client.Post(g.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || string(body) != "done" {
		t.Fatalf("got %d %q, want 201 done", resp.StatusCode, body)
	}
}

func TestProxyHTTP10Upstream(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// No length: the body ends when the connection closes.
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
	})
	h, tg := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	for range 2 {
		resp, err := g.client.Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "until close" {
			t.Fatalf("got %q, want %q", body, "until close")
		}
	}
	if n := tg.Idle(); n != 0 {
		t.Fatalf("got %d idle connections, want 0 after HTTP/1.0 responses", n)
	}
}

// An upstream that answers before reading the body, and closes, still has
// its answer relayed even though the rest of the upload fails.
func TestProxyRelaysEarlyAnswer(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n")
	})
	h, _ := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	for range 20 {
		resp, err := g.client.Post(g.URL+"/", "application/octet-stream", strings.NewReader(strings.Repeat("x", 8<<20)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || string(body) != "too big\n" {
			t.Fatalf("got %d %q, want 413", resp.StatusCode, body)
		}
	}
}

// TestGatewayHeadersSurviveTheClientsConnectionHeader: a client that lists
// X-Consumer-ID (or any header a plugin sets) in its Connection header
// removes only its own copy; the one the gateway sets reaches the
// upstream.
func TestGatewayHeadersSurviveTheClientsConnectionHeader(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, behindEdge(h, func(r *http.Request) {
		r.Header.Set("X-Consumer-ID", "alice")
		r.Header.Set("X-Transformed", "set by a plugin")
	}), nil)
	resp := rawRoundTrip(t, g.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n"+
		"Connection: X-Consumer-ID, X-Transformed, X-Client\r\nX-Consumer-ID: mallory\r\nX-Client: c\r\n\r\n")
	resp.Body.Close()
	hdr := <-got
	if v := hdr["X-Consumer-Id"]; len(v) != 1 || v[0] != "alice" {
		t.Errorf("got X-Consumer-ID %q, want the gateway's [alice]", v)
	}
	if v := hdr.Get("X-Transformed"); v != "set by a plugin" {
		t.Errorf("got X-Transformed %q, want the plugin's value", v)
	}
	if v, ok := hdr["X-Client"]; ok {
		t.Errorf("got X-Client %q, want it removed (the client listed it in Connection)", v)
	}
}

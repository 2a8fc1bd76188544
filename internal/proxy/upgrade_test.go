package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

func wsEcho(t *testing.T) *httptest.Server {
	t.Helper()
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-For") == "" {
			http.Error(w, "missing X-Forwarded-For", http.StatusBadRequest)
			return
		}
		c, err := upgrader.Upgrade(w, r, http.Header{"X-Upstream": {"ws"}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Not parallel: it checks for leaked goroutines.
func TestProxyWebSocketEcho(t *testing.T) {
	up := wsEcho(t)
	base := runtime.NumGoroutine()
	reg := upstream.NewRegistry(nil)
	svc, _ := reg.Service(config.Service{Name: "ws", URL: up.URL})
	tunnels := NewTunnels()
	g := startGateway(t, New(Options{Service: svc, Tunnels: tunnels}), nil)

	wsURL := "ws://" + g.Listener.Addr().String() + "/chat"
	c, resp, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Upstream") != "ws" {
		t.Errorf("got X-Upstream %q, want the upstream's 101 headers", resp.Header.Get("X-Upstream"))
	}
	for i := range 20 {
		msg := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*1000))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("got %d bytes back, want %d", len(got), len(msg))
		}
	}
	if n := tunnels.Count(); n != 1 {
		t.Fatalf("got %d tunnels, want 1", n)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_ = c.Close()
	// The handler returns, and its Exchange is recorded, only after the
	// tunnel left the set.
	ex := g.exchange(t, 1)
	if n := tunnels.Count(); n != 0 {
		t.Fatalf("got %d tunnels after the close, want 0", n)
	}
	if ex.Err != nil || ex.Upstream == "" || ex.UpstreamDuration <= 0 {
		t.Fatalf("got Err %v, Upstream %q, UpstreamDuration %v", ex.Err, ex.Upstream, ex.UpstreamDuration)
	}

	// CloseAll ends open tunnels, as on shutdown.
	c, _, err = websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An echo goes through the tunnel's copies, which start after the
	// tunnel joined the set.
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "ping" {
		t.Fatalf("got %q, %v, want the echo", got, err)
	}
	if n := tunnels.Count(); n != 1 {
		t.Fatalf("got %d tunnels, want 1", n)
	}
	tunnels.CloseAll()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("read succeeded on a closed tunnel")
	}
	_ = c.Close()
	g.exchange(t, 2)
	if n := tunnels.Count(); n != 0 {
		t.Fatalf("got %d tunnels after CloseAll, want 0", n)
	}

	g.client.Transport.(*http.Transport).CloseIdleConnections()
	g.Close()
	_ = reg.Close()
	up.CloseClientConnections()
	checkGoroutines(t, base)
}

func TestProxyUpgradeRefused(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	t.Cleanup(up.Close)
	h, tg := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+g.Listener.Addr().String()+"/", nil)
	if err == nil {
		t.Fatal("dial succeeded, want the upstream's refusal")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got %v, want 403 relayed", resp)
	}
	if tg.Idle() != 0 {
		t.Fatal("an upgrade connection went to the pool")
	}
}

func TestProxyUpgradeProtocolMismatch(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
	})
	h, _ := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	resp := rawRoundTrip(t, g.Listener.Addr().String(),
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", resp.StatusCode)
	}
}

func TestProxyUnrequestedSwitchingProtocols(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
	})
	h, _ := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	resp, err := g.client.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", resp.StatusCode)
	}
}

// Bytes that arrive right behind the heads, in both directions, are
// delivered: the client's sit in the server's buffer, the upstream's in
// the proxy's reader.
func TestProxyUpgradeKeepsBufferedBytes(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "websocket" || req.Header.Get("Connection") != "Upgrade" {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly;")
		_, _ = io.Copy(c, br) // echo, starting with what was buffered
	})
	h, _ := newProxy(t, upURL, func(o *Options) { o.Tunnels = NewTunnels() })
	g := startGateway(t, h, nil)
	c, err := net.Dial("tcp", g.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello;")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("got %d Upgrade %q, want 101 websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	_, _ = io.WriteString(c, "more;")
	want := "early;hello;more;"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

func TestProxyHTTP2Client(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	gw := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{UpstreamPath: r.URL.EscapedPath()}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	gw.EnableHTTP2 = true
	gw.StartTLS()
	t.Cleanup(gw.Close)
	client := gw.Client()

	tests := []struct {
		name     string
		method   string
		body     io.Reader
		wantTE   string
		wantBody string
	}{
		{"get", "GET", nil, "", ""},
		{"post with length", "POST", strings.NewReader("abc"), "", "abc"},
		{"post streamed", "POST", struct{ io.Reader }{strings.NewReader("streamed")}, "chunked", "streamed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, gw.URL+"/h2?x=1", tt.body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("got %s, want HTTP/2 to the gateway", resp.Proto)
			}
			if resp.StatusCode != 200 || string(body) != tt.wantBody {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tt.wantBody)
			}
			if got := resp.Header.Get("X-Proto"); got != "HTTP/1.1" {
				t.Errorf("got upstream proto %q, want HTTP/1.1", got)
			}
			if got := resp.Header.Get("X-Te"); got != tt.wantTE {
				t.Errorf("got upstream Transfer-Encoding %q, want %q", got, tt.wantTE)
			}
			if got := resp.Header.Get("X-Uri"); got != "/h2?x=1" {
				t.Errorf("got URI %q, want /h2?x=1", got)
			}
		})
	}
}

// TestProxyNeverTunnelsConnect checks that a CONNECT a route forwards gets
// no tunnel: an upstream that opens one (answers 2xx) is answered with 502
// and its tunnel data never reaches the client; any other answer is
// relayed as a response.
func TestProxyNeverTunnelsConnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
		want   int
	}{
		{"upstream opens a tunnel", "HTTP/1.1 200 Connection Established\r\n\r\nTUNNEL-DATA", http.StatusBadGateway},
		{"upstream opens a tunnel with a length", "HTTP/1.1 204 No Content\r\n\r\nTUNNEL-DATA", http.StatusBadGateway},
		{"upstream refuses", "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 2\r\n\r\nno", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				got <- r.Method + " " + r.RequestURI
				_, _ = io.WriteString(c, tt.answer)
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _ = br.ReadByte() // hold the tunnel open until the gateway closes it
			})
			h, _ := newProxy(t, upURL, nil)
			g := startGateway(t, h, nil)
			resp := rawRoundTrip(t, g.Listener.Addr().String(), "CONNECT /t HTTP/1.1\r\nHost: x\r\n\r\n")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d; body %q", resp.StatusCode, tt.want, body)
			}
			if strings.Contains(string(body), "TUNNEL-DATA") {
				t.Errorf("body: got %q, the upstream's tunnel data", body)
			}
			if line := <-got; line != "CONNECT /t" {
				t.Errorf("upstream request: got %q, want %q", line, "CONNECT /t")
			}
		})
	}
}

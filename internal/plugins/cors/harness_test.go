package cors

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Paths the test upstream understands.
const (
	pathPlain      = "/plain"       // 200 "upstream"
	pathUpstreamCO = "/upstream-co" // 200 with its own CORS headers and Vary
	pathError      = "/error"       // 500 with its own CORS headers
	pathStream     = "/stream"      // "a", flush, waits for release, "b"
	pathWebSocket  = "/ws"          // WebSocket echo
)

// gateway is the cors plugin in front of the real proxy and a real
// upstream that counts the requests reaching it.
type gateway struct {
	url     string
	hits    atomic.Int64
	release chan struct{} // lets pathStream finish
	client  *http.Client
}

// startGateway builds cors from settings (YAML) and starts the edge, the
// proxy and the upstream.
func startGateway(t *testing.T, settings string) *gateway {
	t.Helper()
	g := &gateway{release: make(chan struct{})}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		h := w.Header()
		switch r.URL.Path {
		case pathUpstreamCO, pathError:
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", "X-Upstream-Secret")
			h.Set("Access-Control-Max-Age", "99999")
			h.Set("Vary", "Accept-Encoding")
			if r.URL.Path == pathError {
				w.WriteHeader(http.StatusInternalServerError)
			}
		case pathStream:
			_, _ = io.WriteString(w, "a")
			http.NewResponseController(w).Flush()
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "b")
			return
		case pathWebSocket:
			up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			mt, msg, err := c.ReadMessage()
			if err == nil {
				_ = c.WriteMessage(mt, msg)
			}
			return
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)

	reg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = reg.Close() })
	svc, err := reg.Service(config.Service{Name: "s", URL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	tunnels := proxy.NewTunnels()
	t.Cleanup(tunnels.CloseAll)
	h, err := plugin.Chain([]plugin.Configured{configure(t, settings)}, plugin.BuildEnv{Route: "r", Service: "s"},
		proxy.New(proxy.Options{Service: svc, Tunnels: tunnels}))
	if err != nil {
		t.Fatalf("build: %s", err.Error())
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &plugin.Exchange{Start: time.Now(), Route: "r", Service: "s", RequestID: "req-1",
			UpstreamPath: r.URL.EscapedPath()}
		h.ServeHTTP(w, r.WithContext(plugin.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(edge.Close)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	g.client = &http.Client{Transport: tr}
	g.url = edge.URL
	return g
}

// configure decodes and validates settings as the plugin registry does.
func configure(t testing.TB, settings string) plugin.Configured {
	t.Helper()
	return authtest.Configure(t, Registration(), settings)
}

// response is what the client got.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends method path with header pairs (name, value, ...).
func (g *gateway) do(t *testing.T, method, path string, kv ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// preflight sends a preflight from origin for method with the requested
// headers (comma-separated, "" for none).
func (g *gateway) preflight(t *testing.T, origin, method, headers string) response {
	t.Helper()
	kv := []string{"Origin", origin, "Access-Control-Request-Method", method}
	if headers != "" {
		kv = append(kv, "Access-Control-Request-Headers", headers)
	}
	return g.do(t, http.MethodOptions, pathPlain, kv...)
}

// accessControl returns the names of the Access-Control-* headers of h.
func accessControl(h http.Header) []string {
	var names []string
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			names = append(names, k)
		}
	}
	return names
}

// varyTokens returns the tokens of every Vary value of h.
func varyTokens(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// checkHeader fails unless h[name] has exactly the value want ("" means
// absent).
func checkHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	got := h.Values(name)
	switch {
	case want == "" && len(got) != 0:
		t.Errorf("%s: got %q, want absent", name, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}

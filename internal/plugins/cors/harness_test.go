package cors

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// Paths the test upstream understands.
const (
	pathPlain      = "/plain"       // 200 "upstream"
	pathUpstreamCO = "/upstream-co" // 200 with its own CORS headers and Vary
	pathError      = "/error"       // 500 with its own CORS headers
	pathStream     = "/stream"      // "a", flush, waits for release, "b"
	pathWebSocket  = "/ws"          // WebSocket echo
)

// gateway is the cors plugin in the shared test gateway, in front of the
// real proxy and an upstream that serves the paths above and counts the
// requests reaching it.
type gateway struct {
	*plugintest.Gateway
	release chan struct{} // lets pathStream finish
}

// startGateway builds cors from settings (YAML) and starts the edge, the
// proxy and the upstream.
func startGateway(t *testing.T, settings string) *gateway {
	t.Helper()
	g := &gateway{release: make(chan struct{})}
	g.Gateway = plugintest.Start(t, plugintest.Options{Respond: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})}, configure(t, settings))
	return g
}

// configure decodes and validates settings as the plugin registry does.
func configure(t testing.TB, settings string) pipeline.Configured {
	t.Helper()
	return plugintest.Configure(t, Registration(), settings)
}

// preflight sends a preflight from origin for method with the requested
// headers (comma-separated, "" for none).
func (g *gateway) preflight(t *testing.T, origin, method, headers string) plugintest.Result {
	t.Helper()
	kv := []string{"Origin", origin, "Access-Control-Request-Method", method}
	if headers != "" {
		kv = append(kv, "Access-Control-Request-Headers", headers)
	}
	return g.Do(t, http.MethodOptions, pathPlain, "", kv...)
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

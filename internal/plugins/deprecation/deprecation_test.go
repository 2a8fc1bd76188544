package deprecation

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// startGateway runs the plugin configured by settings in the shared test
// gateway: an edge creating the Exchange as the gateway does, the real
// proxy, and the upstream opts name.
func startGateway(t *testing.T, settings string, opts plugintest.Options) *plugintest.Gateway {
	t.Helper()
	return plugintest.Start(t, opts, plugintest.Configure(t, Registration(), settings))
}

// 2026-01-01T00:00:00Z is 1767225600 seconds after the epoch.
const (
	full = `{since: "2026-01-01", sunset: "2026-07-01T02:00:00+02:00",
		link: "https://developer.example.com/orders/migrate-to-v2",
		sunset_link: "https://developer.example.com/sunset"}`
	wantDeprecation = "@1767225600"
	wantSunset      = "Wed, 01 Jul 2026 00:00:00 GMT"
	wantDepLink     = `<https://developer.example.com/orders/migrate-to-v2>; rel="deprecation"; type="text/html"`
	wantSunsetLink  = `<https://developer.example.com/sunset>; rel="sunset"`
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name        string
		settings    string
		upstream    http.Header // headers the upstream sends
		deprecation string
		sunset      []string
		link        []string
	}{
		{"since only", `{since: "2026-01-01"}`, nil, wantDeprecation, nil, nil},
		{"since as a date-time with offset", `{since: "2026-01-01T01:00:00+01:00"}`, nil, wantDeprecation, nil, nil},
		{"since with fractional seconds", `{since: "2026-01-01T00:00:00.9Z"}`, nil, wantDeprecation, nil, nil},
		{"everything", full, nil, wantDeprecation, []string{wantSunset}, []string{wantDepLink, wantSunsetLink}},
		{"link appended after the upstream's", full,
			http.Header{"Link": {`</orders?page=2>; rel="next"`}},
			wantDeprecation, []string{wantSunset}, []string{`</orders?page=2>; rel="next"`, wantDepLink, wantSunsetLink}},
		{"only the migration link", `{since: "2026-01-01", link: "http://docs.example.com/v2"}`,
			http.Header{"Link": {`</a.css>; rel=preload`}},
			wantDeprecation, nil, []string{`</a.css>; rel=preload`, `<http://docs.example.com/v2>; rel="deprecation"; type="text/html"`}},
		{"replaces the upstream's own Deprecation and Sunset", full,
			http.Header{"Deprecation": {"@1"}, "Sunset": {"Thu, 01 Jan 1970 00:00:00 GMT"}},
			wantDeprecation, []string{wantSunset}, []string{wantDepLink, wantSunsetLink}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.upstream {
					w.Header()[k] = v
				}
				_, _ = io.WriteString(w, "orders")
			})
			g := startGateway(t, tt.settings, plugintest.Options{Upstream: up})
			res := g.Do(t, http.MethodGet, "/orders", "")
			if res.Status != 200 || res.Body != "orders" {
				t.Fatalf("got %d %q, want 200 \"orders\"", res.Status, res.Body)
			}
			checkHeaders(t, res.Header, tt.deprecation, tt.sunset, tt.link)
		})
	}
}

func checkHeaders(t *testing.T, h http.Header, deprecation string, sunset, link []string) {
	t.Helper()
	if got := h.Values("Deprecation"); !slices.Equal(got, []string{deprecation}) {
		t.Errorf("got Deprecation %q, want [%q]", got, deprecation)
	}
	if got := h.Values("Sunset"); !slices.Equal(got, sunset) {
		t.Errorf("got Sunset %q, want %q", got, sunset)
	}
	if got := h.Values("Link"); !slices.Equal(got, link) {
		t.Errorf("got Link %q, want %q", got, link)
	}
}

// TestHeadersOnGatewayErrors: the proxy's own 502 (upstream down) carries
// the headers too.
func TestHeadersOnGatewayErrors(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	g := startGateway(t, full, plugintest.Options{UpstreamURL: downURL})
	res := g.Do(t, http.MethodGet, "/orders", "")
	if res.Status != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("got Content-Type %q, want application/problem+json", ct)
	}
	checkHeaders(t, res.Header, wantDeprecation, []string{wantSunset}, []string{wantDepLink, wantSunsetLink})
}

// TestStreaming: the head (with the headers) and the first chunk reach the
// client while the upstream still holds the rest.
func TestStreaming(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	g := startGateway(t, `{since: "2026-01-01"}`, plugintest.Options{Upstream: up})
	resp, err := g.Client.Get(g.URL + "/events")
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Deprecation"); got != wantDeprecation {
		t.Errorf("got Deprecation %q, want %q", got, wantDeprecation)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		close(release)
		t.Fatalf("got first line %q (%v), want \"data: one\\n\" before the upstream finishes", line, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("got rest %q (%v), want the second event", rest, err)
	}
}

// TestWebSocketUntouched: a 101 passes without the headers and the
// upgraded connection works through the wrapper.
func TestWebSocketUntouched(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{}
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		_ = c.WriteMessage(mt, msg)
	})
	g := startGateway(t, full, plugintest.Options{Upstream: up})
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %d, want 101", resp.StatusCode)
	}
	for _, k := range []string{"Deprecation", "Sunset", "Link"} {
		if v := resp.Header.Values(k); v != nil {
			t.Errorf("got %s %q on the 101, want none", k, v)
		}
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "hello" {
		t.Fatalf("got %q (%v), want hello", got, err)
	}
}

// TestWriterPassesThrough: a handler behind the plugin finds the
// underlying writer (http.ResponseController) and the head is completed by
// a bare Write or Flush as well as by WriteHeader; 1xx heads stay clean.
func TestWriterPassesThrough(t *testing.T) {
	mw, err := build(&Spec{Since: "2026-01-01"}, &pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		handle func(t *testing.T, w http.ResponseWriter)
	}{
		{"write", func(_ *testing.T, w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }},
		{"flush", func(_ *testing.T, w http.ResponseWriter) { w.(http.Flusher).Flush() }},
		{"early hints then 200", func(t *testing.T, w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			if v := w.Header().Get("Deprecation"); v != "" {
				t.Errorf("got Deprecation %q on a 1xx head, want none", v)
			}
			w.WriteHeader(http.StatusOK)
		}},
		{"response controller", func(t *testing.T, w http.ResponseWriter) {
			if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("got SetWriteDeadline error %q, want none: Unwrap must reach the connection", err.Error())
			}
			w.WriteHeader(http.StatusNoContent)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.handle(t, w) })))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				t.Fatalf("got status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Deprecation"); got != wantDeprecation {
				t.Errorf("got Deprecation %q, want %q", got, wantDeprecation)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	const p = "routes[0].plugins.deprecation"
	tests := []struct {
		name     string
		settings string
		want     []string // nil means valid
	}{
		{"date", `{since: "2026-01-01"}`, nil},
		{"everything", full, nil},
		{"sunset equal to since", `{since: "2026-01-01", sunset: "2026-01-01T00:00:00Z"}`, nil},
		{"missing since", `{sunset: "2026-07-01"}`, []string{p + `.since: is required`}},
		{"empty", `{}`, []string{p + `.since: is required`}},
		{"bad since", `{since: "01/01/2026"}`,
			[]string{p + `.since: must be an RFC 3339 date ("2026-01-01") or date-time ("2026-01-01T00:00:00Z")`}},
		{"date-time without zone", `{since: "2026-01-01T00:00:00"}`, []string{p + `.since: must be an RFC 3339`}},
		{"bad sunset", `{since: "2026-01-01", sunset: "soon"}`, []string{p + `.sunset: must be an RFC 3339`}},
		{"sunset before since", `{since: "2026-01-01", sunset: "2025-12-31T23:59:59Z"}`,
			[]string{p + `.sunset: must not be before since (2026-01-01T00:00:00Z)`}},
		{"relative link", `{since: "2026-01-01", link: "/docs/migrate"}`,
			[]string{p + `.link: must be an absolute http or https URL`}},
		{"ftp link", `{since: "2026-01-01", link: "ftp://example.com/x"}`,
			[]string{p + `.link: must be an absolute http or https URL`}},
		{"link breaking the header", `{since: "2026-01-01", link: "https://example.com/a>; rel=x"}`,
			[]string{p + `.link: must be an absolute http or https URL without spaces`}},
		{"bad sunset link", `{since: "2026-01-01", sunset_link: "example.com/sunset"}`,
			[]string{p + `.sunset_link: must be an absolute http or https URL`}},
		{"every problem at once", `{sunset: "x", link: "y", sunset_link: "z"}`,
			[]string{p + ".since:", p + ".sunset:", p + ".link:", p + ".sunset_link:"}},
		{"unknown key", `{since: "2026-01-01", deprecated: true}`, []string{"deprecated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plugintest.CheckConfigure(t, Registration(), tt.settings, tt.want)
		})
	}
}

func TestRegistration(t *testing.T) {
	reg := Registration()
	if reg.Name != "deprecation" || reg.Phase != pipeline.PhaseResponseTransform || reg.Global {
		t.Errorf("got %s/%d/global=%t, want deprecation/%d/global=false", reg.Name, reg.Phase, reg.Global, pipeline.PhaseResponseTransform)
	}
}

// discard is a minimal ResponseWriter for benchmarks.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

func BenchmarkDeprecation(b *testing.B) {
	mw, err := build(&Spec{Since: "2026-01-01", Sunset: "2026-07-01",
		Link: "https://developer.example.com/migrate", SunsetLink: "https://developer.example.com/sunset"},
		&pipeline.BuildEnv{})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("orders")
	for _, tc := range []struct {
		name     string
		upstream []string
	}{{"no upstream link", nil}, {"upstream link", []string{`</p2>; rel="next"`}}} {
		b.Run(tc.name, func(b *testing.B) {
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.upstream != nil {
					w.Header()["Link"] = tc.upstream
				}
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(body)
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := &discard{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

package transform

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// jsonUpstream answers every request with body as application/json; when
// chunked is set the length is not declared.
func jsonUpstream(t *testing.T, body string, chunked bool) *plugintest.Upstream {
	return plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		if chunked {
			// Two writes with a flush between: sent chunked.
			half := len(body) / 2
			_, _ = io.WriteString(w, body[:half])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, body[half:])
			return
		}
		_, _ = io.WriteString(w, body)
	})
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "internal/1.0")
		h.Set("X-Powered-By", "php")
		h.Set("X-Internal-Id", "42")
		h.Set("Cache-Control", "no-store")
		if r.URL.Query().Get("status") == "404" {
			w.WriteHeader(404)
		}
		_, _ = io.WriteString(w, "hello")
	})
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `
headers:
  remove: [Server, X-Powered-By]
  rename: {X-Internal-Id: X-Request-Ref}
  set:
    X-Response-Time: "$(latency_ms)ms"
    X-Upstream-Status: "$(status)"
    X-Route: "$(route) $(request_id)"
  add:
    Cache-Control: "public, max-age=60"
    X-Frame-Options: DENY
`))
	for _, status := range []int{200, 404} {
		res := gw.Do(t, "GET", "/?status="+strconv.Itoa(status), "")
		if res.Status != status {
			t.Fatalf("got status %d, want %d", res.Status, status)
		}
		h := res.Header
		for _, k := range []string{"Server", "X-Powered-By", "X-Internal-Id"} {
			if v, ok := h[k]; ok {
				t.Errorf("got %s: %q, want it removed", k, v)
			}
		}
		checks := map[string]string{"X-Request-Ref": "42", "X-Upstream-Status": strconv.Itoa(status),
			"X-Route": "orders req-1", "Cache-Control": "no-store", "X-Frame-Options": "DENY"}
		for k, want := range checks {
			if got := h.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
		if rt := h.Get("X-Response-Time"); !regexp.MustCompile(`^[0-9]+ms$`).MatchString(rt) {
			t.Errorf("got X-Response-Time %q, want <integer>ms", rt)
		}
		if res.Body != "hello" {
			t.Errorf("got body %q, want hello", res.Body)
		}
	}
}

func TestResponseStatusRemap(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"internal":"trace","msg":"x"}`)
	})
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `
status: {"500": 502, "418": 200, "201": 204}
body: {deny: [internal]}
headers: {set: {X-Was: "$(status)"}}
`))
	tests := []struct {
		path     string
		want     int
		wantBody string
	}{
		{"/500", 502, `{"msg":"x"}`},
		{"/418", 200, `{"msg":"x"}`},
		{"/404", 404, `{"msg":"x"}`},
		{"/201", 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			res := gw.Do(t, "GET", tt.path, "")
			if res.Status != tt.want {
				t.Errorf("got status %d, want %d", res.Status, tt.want)
			}
			if res.Body != tt.wantBody {
				t.Errorf("got body %q, want %q", res.Body, tt.wantBody)
			}
			if got, want := res.Header.Get("X-Was"), strings.TrimPrefix(tt.path, "/"); got != want {
				t.Errorf("got X-Was %q, want %q", got, want)
			}
		})
	}
}

const orderDoc = `{"id":7,"status":"paid","total":12.50,
"user":{"name":"Ann","email":"ann@example.com","address":{"city":"Utrecht","street":"Main 1"},"password_hash":"x"},
"items":[{"name":"pen","sku":"P-1","price":1.25,"internal":{"cost":0.4}},{"name":"ink","sku":"I-9","price":11.25,"internal":{"cost":3}}],
"tags":["a","b"],"audit":{"created_by":"svc"}}`

func TestResponseBodyFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     string
		chunked bool
		want    string
	}{
		{"allow through arrays and nested objects", `{body: {allow: [id, items.name, items.price, user.address.city, tags]}}`, false,
			`{"id":7,"user":{"address":{"city":"Utrecht"}},"items":[{"name":"pen","price":1.25},{"name":"ink","price":11.25}],"tags":["a","b"]}`},
		{"deny through arrays and nested objects", `{body: {deny: [user.password_hash, items.internal, audit, nope.x]}}`, true,
			`{"id":7,"status":"paid","total":12.50,"user":{"name":"Ann","email":"ann@example.com","address":{"city":"Utrecht","street":"Main 1"}},"items":[{"name":"pen","sku":"P-1","price":1.25},{"name":"ink","sku":"I-9","price":11.25}],"tags":["a","b"]}`},
		{"rename after allow", `{body: {allow: [id, user.name, items.sku], rename: {id: order_id, items.sku: code, user.name: full_name, user: customer}}}`, false,
			`{"order_id":7,"customer":{"full_name":"Ann"},"items":[{"code":"P-1"},{"code":"I-9"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := jsonUpstream(t, orderDoc, tt.chunked)
			gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, tt.cfg))
			res := gw.Do(t, "GET", "/", "", "Accept-Encoding", "gzip")
			if res.Body != tt.want {
				t.Errorf("got body\n%s\nwant\n%s", res.Body, tt.want)
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(res.Body)) {
				t.Errorf("got Content-Length %q, want %d", cl, len(res.Body))
			}
			if et := res.Header.Get("ETag"); et != `W/"v1"` {
				t.Errorf("got ETag %q, want the weak W/\"v1\"", et)
			}
			if ae := up.Last().Header.Get("Accept-Encoding"); ae != "" {
				t.Errorf("got Accept-Encoding %q upstream, want it removed", ae)
			}
		})
	}
}

// TestMobileAllowListIsSmaller: a mobile client's allow-list cuts the
// payload down.
func TestMobileAllowListIsSmaller(t *testing.T) {
	t.Parallel()
	var items []map[string]any
	for i := range 20 {
		items = append(items, map[string]any{"id": i, "name": "item " + strconv.Itoa(i), "description": strings.Repeat("long text ", 10),
			"thumbnail": "https://cdn.example/" + strconv.Itoa(i) + ".jpg", "stock": map[string]any{"warehouse": "A", "count": i}})
	}
	full, _ := json.Marshal(map[string]any{"items": items, "page": 1, "debug": map[string]any{"ms": 12}})
	up := jsonUpstream(t, string(full), false)
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `{body: {allow: [page, items.id, items.name, items.thumbnail]}}`))
	res := gw.Do(t, "GET", "/", "")
	if len(res.Body) >= len(full) {
		t.Fatalf("got %d bytes, want fewer than the original %d", len(res.Body), len(full))
	}
	var doc struct {
		Page  int              `json:"page"`
		Items []map[string]any `json:"items"`
		Debug any              `json:"debug"`
	}
	if err := json.Unmarshal([]byte(res.Body), &doc); err != nil {
		t.Fatalf("decode: %s", err.Error())
	}
	if doc.Page != 1 || len(doc.Items) != 20 || doc.Debug != nil || len(doc.Items[3]) != 3 || doc.Items[3]["name"] != "item 3" {
		t.Errorf("got %s, want page and 20 items of id, name, thumbnail", res.Body)
	}
	t.Logf("mobile allow-list: %d → %d bytes", len(full), len(res.Body))
}

func TestResponseBodyPassesUntouched(t *testing.T) {
	t.Parallel()
	const doc = `{"secret":1,"ok":2}`
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, doc)
	_ = zw.Close()
	big := `{"secret":"` + strings.Repeat("x", 400) + `"}`
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/text":
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, doc)
		case "/gzip":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Encoding", "gzip")
			_, _ = io.WriteString(w, gz.String())
		case "/big":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = io.WriteString(w, big)
		case "/big-chunked":
			h.Set("Content-Type", "application/json")
			for i := 0; i < len(big); i += 100 {
				_, _ = io.WriteString(w, big[i:min(i+100, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/invalid":
			h.Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"secret":`)
		}
	})
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `{body: {deny: [secret], max_size: 256}}`))
	tests := []struct{ path, want string }{
		{"/text", doc}, {"/gzip", gz.String()}, {"/big", big}, {"/big-chunked", big}, {"/invalid", `{"secret":`},
	}
	for _, tt := range tests {
		res := gw.Do(t, "GET", tt.path, "")
		if res.Status != 200 || res.Body != tt.want {
			t.Errorf("%s: got %d %q, want 200 and the body unchanged", tt.path, res.Status, res.Body)
		}
	}
	// A HEAD request has no body to filter.
	if res := gw.Do(t, "HEAD", "/big", ""); res.Status != 200 || res.Body != "" {
		t.Errorf("HEAD: got %d %q, want 200 and no body", res.Status, res.Body)
	}
}

// TestGatewayErrorsKeepTheirShape: a problem document the gateway writes
// (upstream down) is not filtered or remapped.
func TestGatewayErrorsKeepTheirShape(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: connection refused
	gw := startGateway(t, plugintest.Options{UpstreamURL: "http://" + addr}, respPlugin(t, `{status: {"502": 503}, body: {allow: [nothing]}, headers: {set: {X-T: "$(status)"}}}`))
	res := gw.Do(t, "GET", "/", "")
	if res.Status != 502 {
		t.Errorf("got status %d, want 502", res.Status)
	}
	if !strings.Contains(res.Body, `"status":502`) || !strings.Contains(res.Body, `"request_id":"req-1"`) {
		t.Errorf("got body %s, want the problem document whole", res.Body)
	}
	if got := res.Header.Get("X-T"); got != "502" {
		t.Errorf("got X-T %q, want 502", got)
	}
}

// TestSSEStreamsUntouched: an event stream is not held back: the first
// event reaches the client before the upstream sends the second.
func TestSSEStreamsUntouched(t *testing.T) {
	t.Parallel()
	second := make(chan struct{})
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"secret\":1}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-second:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `{body: {deny: [secret]}, headers: {set: {X-T: "$(latency_ms)"}}}`))
	resp, err := gw.Client.Get(gw.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-T") == "" {
		t.Errorf("got no X-T header, want header operations applied")
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read the first event: %s", err.Error())
	}
	if line != "data: {\"secret\":1}\n" {
		t.Fatalf("got %q before the second event, want the first event untouched", line)
	}
	close(second)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("got rest %q, want the second event", rest)
	}
}

// TestWebSocketUpgradePasses: a 101 answer is not touched and the tunnel
// works through the wrapper.
func TestWebSocketUpgradePasses(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, p); err != nil {
				return
			}
		}
	})
	gw := startGateway(t, plugintest.Options{Upstream: up}, respPlugin(t, `{body: {allow: [a]}, headers: {set: {X-T: "$(status)"}}, status: {"200": 201}}`))
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(gw.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %s", err.Error())
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("got status %d, want 101", resp.StatusCode)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"a":1,"b":2}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %s", err.Error())
	}
	if string(p) != `{"a":1,"b":2}` {
		t.Errorf("got %q, want the message echoed untouched", p)
	}
}

package compression

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

func TestEachEncodingDecodesToTheOriginal(t *testing.T) {
	body := jsonBody(64 << 10)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		for _, chunked := range []bool{false, true} {
			name := coding + "/length"
			if chunked {
				name = coding + "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				g := startGateway(t, "", serve(body, "application/json; charset=utf-8", chunked, nil))
				resp, raw := fetch(t, g, "GET", "/data", http.Header{"Accept-Encoding": {coding}}, nil)
				if got := resp.Header.Get("Content-Encoding"); got != coding {
					t.Fatalf("got Content-Encoding %q, want %q", got, coding)
				}
				if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
					t.Errorf("got Content-Length %q, want none", resp.Header.Get("Content-Length"))
				}
				if got := resp.Header.Values("Vary"); !hasToken(got, "accept-encoding") {
					t.Errorf("got Vary %q, want Accept-Encoding", got)
				}
				if len(raw) >= len(body)/2 {
					t.Errorf("got %d encoded bytes for %d, want real compression", len(raw), len(body))
				}
				if got := decode(t, coding, raw); !bytes.Equal(got, body) {
					t.Errorf("got %d decoded bytes, want the original %d", len(got), len(body))
				}
			})
		}
	}
}

func TestLevelsAreUsed(t *testing.T) {
	t.Parallel()
	body := jsonBody(256 << 10)
	sizes := map[string]int{}
	for _, lv := range []string{"1", "9"} {
		g := startGateway(t, "levels: {gzip: "+lv+"}", serve(body, "text/plain", false, nil))
		_, raw := fetch(t, g, "GET", "/", http.Header{"Accept-Encoding": {"gzip"}}, nil)
		if got := decode(t, "gzip", raw); !bytes.Equal(got, body) {
			t.Fatalf("level %s: got %d decoded bytes, want %d", lv, len(got), len(body))
		}
		sizes[lv] = len(raw)
	}
	if sizes["9"] >= sizes["1"] {
		t.Errorf("got level 9 %d bytes, level 1 %d bytes, want level 9 smaller", sizes["9"], sizes["1"])
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		prefs  string // encodings setting, "" for the default [zstd, br, gzip]
		accept []string
		want   encoding
	}{
		{"no header", "", nil, encIdentity},
		{"empty header", "", []string{""}, encIdentity},
		{"one coding", "", []string{"gzip"}, encGzip},
		{"tie goes to server order", "", []string{"gzip, br"}, encBrotli},
		{"tie of three", "", []string{"gzip, br, zstd"}, encZstd},
		{"tie with the other order", "[gzip, br, zstd]", []string{"zstd, br, gzip"}, encGzip},
		{"higher q wins over order", "", []string{"gzip;q=1, br;q=0.5"}, encGzip},
		{"q with spaces", "", []string{"br ; q=0.8 , gzip ; q=0.9"}, encGzip},
		{"q=0 refuses", "", []string{"br;q=0"}, encIdentity},
		{"q=0 refuses one of two", "", []string{"zstd;q=0, gzip"}, encGzip},
		{"star covers the rest", "", []string{"*"}, encZstd},
		{"star with lower q", "", []string{"*;q=0.5, gzip"}, encGzip},
		{"star but one refused", "", []string{"zstd;q=0, *"}, encBrotli},
		{"star refused", "", []string{"*;q=0"}, encIdentity},
		{"identity only", "", []string{"identity"}, encIdentity},
		{"identity refused, nothing else", "", []string{"identity;q=0"}, encIdentity},
		{"identity refused with gzip", "", []string{"gzip, identity;q=0"}, encGzip},
		{"identity preferred by q", "", []string{"gzip;q=0.5, identity"}, encIdentity},
		{"identity tie goes to a coding", "", []string{"gzip;q=0.5, identity;q=0.5"}, encGzip},
		{"tiny q still acceptable", "", []string{"gzip;q=0.001"}, encGzip},
		{"case-insensitive", "", []string{"GZip"}, encGzip},
		{"x-gzip", "", []string{"x-gzip"}, encGzip},
		{"unknown coding", "", []string{"deflate, compress"}, encIdentity},
		{"malformed q ignored", "", []string{"br;q=abc, gzip;q=0.2"}, encGzip},
		{"q over 1 ignored", "", []string{"br;q=1.5"}, encIdentity},
		{"several header lines", "", []string{"gzip", "br"}, encBrotli},
		{"not offered", "[gzip]", []string{"zstd, br"}, encIdentity},
		{"star with a subset offered", "[gzip, br]", []string{"*"}, encGzip},
		{"other parameters", "", []string{"gzip;level=3;q=0.7, br;q=0.6"}, encGzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := newSpec()
			if tt.prefs != "" {
				spec.Encodings = strings.Split(strings.Trim(tt.prefs, "[]"), ", ")
			}
			c := newCompressor(spec)
			if got := c.negotiate(tt.accept); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseQValue(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"1", 1000, true}, {"0.5", 500, true}, {"0.123", 123, true},
		{"1.000", 1000, true}, {"1.", 1000, true}, {"0.", 0, true},
		{"1.001", 0, false}, {"2", 0, false}, {"0.1234", 0, false}, {"", 0, false},
		{"-1", 0, false}, {"0,5", 0, false}, {".5", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQValue(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseQValue(%q): got %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResponsesLeftUntouched(t *testing.T) {
	big := jsonBody(32 << 10)
	tests := []struct {
		name     string
		up       http.Handler
		method   string
		header   http.Header
		wantVary bool
	}{
		{"small body with length", serve(big[:100], "application/json", false, nil), "GET", nil, false},
		{"small chunked body", serve(big[:900], "application/json", true, nil), "GET", nil, false},
		{"image", serve(big, "image/png", false, nil), "GET", nil, false},
		{"octet-stream", serve(big, "application/octet-stream", true, nil), "GET", nil, false},
		{"video", serve(big, "video/mp4", false, nil), "GET", nil, false},
		{"no content type", serve(big, "", false, nil), "GET", nil, false},
		{"already encoded upstream", serve(encode(t, "br", big), "application/json", false,
			http.Header{"Content-Encoding": {"br"}}), "GET", nil, false},
		{"no-transform", serve(big, "text/html", false,
			http.Header{"Cache-Control": {"public, no-transform"}}), "GET", nil, false},
		{"content-range on 200", serve(big, "text/plain", false,
			http.Header{"Content-Range": {"bytes 0-99/100"}}), "GET", nil, false},
		{"range request answered 206", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			http.ServeContent(w, r, "x.txt", time.Time{}, bytes.NewReader(big))
		}), "GET", http.Header{"Range": {"bytes=0-9999"}}, false},
		{"HEAD", serve(big, "application/json", false, nil), "HEAD", nil, false},
		{"client accepts nothing", serve(big, "application/json", false, nil), "GET",
			http.Header{"Accept-Encoding": {"identity"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// What the client gets without the plugin, straight from the upstream.
			direct := startUpstreamOnly(t, tt.up)
			h := http.Header{"Accept-Encoding": {"gzip, br, zstd"}}
			for k, v := range tt.header {
				h[k] = v
			}
			wantResp, wantBody := fetch(t, direct, tt.method, "/x", h, nil)
			g := startGateway(t, "", tt.up)
			resp, raw := fetch(t, g, tt.method, "/x", h, nil)
			if resp.StatusCode != wantResp.StatusCode {
				t.Errorf("got status %d, want %d", resp.StatusCode, wantResp.StatusCode)
			}
			if got, want := resp.Header.Get("Content-Encoding"), wantResp.Header.Get("Content-Encoding"); got != want {
				t.Errorf("got Content-Encoding %q, want %q", got, want)
			}
			if !bytes.Equal(raw, wantBody) {
				t.Errorf("got a body of %d bytes, want the upstream's %d bytes", len(raw), len(wantBody))
			}
			if got, want := resp.Header.Get("Content-Length"), wantResp.Header.Get("Content-Length"); got != want {
				t.Errorf("got Content-Length %q, want %q", got, want)
			}
			if got := hasToken(resp.Header.Values("Vary"), "accept-encoding"); got != tt.wantVary {
				t.Errorf("got Vary %q, want Accept-Encoding %v", resp.Header.Values("Vary"), tt.wantVary)
			}
		})
	}
}

// startUpstreamOnly serves up through a plain server, for comparison.
func startUpstreamOnly(t *testing.T, up http.Handler) *plugintest.Gateway {
	t.Helper()
	g := startGateway(t, "content_types: [nothing/matches]", up)
	return g
}

func TestVary(t *testing.T) {
	body := jsonBody(8 << 10)
	tests := []struct {
		name     string
		upVary   []string
		accept   string
		wantVary []string
	}{
		{"compressed", nil, "gzip", []string{"Accept-Encoding"}},
		{"compressed appends", []string{"Origin"}, "gzip", []string{"Origin", "Accept-Encoding"}},
		{"already there", []string{"Origin, accept-encoding"}, "gzip", []string{"Origin, accept-encoding"}},
		{"vary star kept", []string{"*"}, "gzip", []string{"*"}},
		{"identity for a client without Accept-Encoding", nil, "", []string{"Accept-Encoding"}},
		{"identity appends", []string{"Origin"}, "", []string{"Origin", "Accept-Encoding"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "", serve(body, "text/css", false, http.Header{"Vary": tt.upVary}))
			h := http.Header{}
			if tt.accept != "" {
				h.Set("Accept-Encoding", tt.accept)
			}
			resp, _ := fetch(t, g, "GET", "/", h, nil)
			if got := resp.Header.Values("Vary"); strings.Join(got, "|") != strings.Join(tt.wantVary, "|") {
				t.Errorf("got Vary %q, want %q", got, tt.wantVary)
			}
		})
	}
}

func TestCompressedResponseHeaders(t *testing.T) {
	body := jsonBody(8 << 10)
	tests := []struct {
		name, etag, wantETag string
	}{
		{"strong etag weakened", `"v1"`, `W/"v1"`},
		{"weak etag kept", `W/"v1"`, `W/"v1"`},
		{"no etag", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			extra := http.Header{"Accept-Ranges": {"bytes"}}
			if tt.etag != "" {
				extra.Set("ETag", tt.etag)
			}
			g := startGateway(t, "", serve(body, "application/json", false, extra))
			resp, raw := fetch(t, g, "GET", "/", http.Header{"Accept-Encoding": {"zstd"}}, nil)
			if got := resp.Header.Get("ETag"); got != tt.wantETag {
				t.Errorf("got ETag %q, want %q", got, tt.wantETag)
			}
			if got := resp.Header.Get("Accept-Ranges"); got != "" {
				t.Errorf("got Accept-Ranges %q, want none", got)
			}
			if got := decode(t, "zstd", raw); !bytes.Equal(got, body) {
				t.Errorf("got %d decoded bytes, want %d", len(got), len(body))
			}
		})
	}
}

func TestEventStreamPassesEventByEvent(t *testing.T) {
	t.Parallel()
	second := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+strings.Repeat("a", 2000)+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-second:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	g := startGateway(t, "min_size: 0\ncontent_types: [text/event-stream, text/plain]", up)
	req, _ := http.NewRequest("GET", g.URL+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("got Content-Encoding %q, want none", got)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: aaa") {
		t.Fatalf("got first event %q (%v), want data: aaa...", line[:min(len(line), 12)], err)
	}
	close(second) // only now does the upstream send the second event
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rest); got != "\ndata: two\n\n" {
		t.Errorf("got the rest %q, want the second event", got)
	}
}

func TestCompressedStreamFlushesAsItGoes(t *testing.T) {
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			t.Parallel()
			first := jsonBody(4 << 10)
			next := make(chan struct{})
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson+json")
				_, _ = w.Write(first)
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "tail")
			})
			g := startGateway(t, "", up)
			req, _ := http.NewRequest("GET", g.URL+"/", nil)
			req.Header.Set("Accept-Encoding", coding)
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("got Content-Encoding %q, want %q", got, coding)
			}
			dec := decoder(t, coding, resp.Body)
			got := make([]byte, len(first))
			if _, err := io.ReadFull(dec, got); err != nil {
				t.Fatalf("read the first part before the upstream sent more: %s", err.Error())
			}
			if !bytes.Equal(got, first) {
				t.Fatal("got a different first part")
			}
			close(next)
			tail, err := io.ReadAll(dec)
			if err != nil {
				t.Fatalf("read to a valid end: %s", err.Error())
			}
			if string(tail) != "tail" {
				t.Errorf("got tail %q, want %q", tail, "tail")
			}
		})
	}
}

func TestBrokenUpstreamStreamIsNotTerminated(t *testing.T) {
	t.Parallel()
	body := jsonBody(16 << 10)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write(body) // then the handler ends: the upstream cuts the body short
		panic(http.ErrAbortHandler)
	})
	g := startGateway(t, "", up)
	req, _ := http.NewRequest("GET", g.URL+"/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	// The client must see an error (no response, or a body that breaks
	// off): a clean gzip end would pass the truncated body off as complete.
	resp, err := g.Client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("got a complete response of %d bytes (Content-Encoding %q), want a broken one",
			len(raw), resp.Header.Get("Content-Encoding"))
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	t.Parallel()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := websocket.Upgrader{}
		conn, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		_ = conn.WriteMessage(mt, msg)
	})
	g := startGateway(t, "", up)
	h := http.Header{"Accept-Encoding": {"gzip"}}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.URL, "http")+"/ws", h)
	if err != nil {
		t.Fatalf("dial: %s", err.Error())
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got status %d, want 101", resp.StatusCode)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("hello ", 500))); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != strings.Repeat("hello ", 500) {
		t.Errorf("got echo of %d bytes, want %d", len(msg), 3000)
	}
}

func TestTrailersSurviveCompression(t *testing.T) {
	t.Parallel()
	body := jsonBody(8 << 10)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = w.Write(body)
		w.Header().Set("X-Checksum", "abc123")
	})
	g := startGateway(t, "", up)
	resp, raw := fetch(t, g, "GET", "/", http.Header{"Accept-Encoding": {"gzip"}}, nil)
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("got Content-Encoding %q, want gzip", got)
	}
	if got := decode(t, "gzip", raw); !bytes.Equal(got, body) {
		t.Errorf("got %d decoded bytes, want %d", len(got), len(body))
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("got trailer %q, want %q", got, "abc123")
	}
}

func TestGatewayProblemResponsesAreCompressed(t *testing.T) {
	t.Parallel()
	// A corrupt upload makes the proxy answer 400 with problem JSON, which
	// passes back through the plugin like any response: identity under the
	// default min_size (it is small), gzip with min_size: 0.
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tt := range []struct{ settings, want string }{
		{"decompress_requests: true", ""},
		{"decompress_requests: true\nmin_size: 0", "gzip"},
	} {
		g := startGateway(t, tt.settings, up)
		h := http.Header{"Accept-Encoding": {"gzip"}, "Content-Encoding": {"gzip"}}
		resp, raw := fetch(t, g, "POST", "/", h, strings.NewReader("not gzip"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%q: got status %d, want 400", tt.settings, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Encoding"); got != tt.want {
			t.Errorf("%q: got Content-Encoding %q, want %q", tt.settings, got, tt.want)
		}
		if tt.want == "gzip" {
			raw = decode(t, "gzip", raw)
		}
		if !bytes.Contains(raw, []byte(`"request_id":"req-1"`)) {
			t.Errorf("%q: got body %q, want problem JSON", tt.settings, raw)
		}
	}
}

func TestEmptyBodyNeverCompressed(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "min_size: 0", serve(nil, "application/json", false, nil))
	resp, raw := fetch(t, g, "GET", "/", http.Header{"Accept-Encoding": {"gzip"}}, nil)
	if got := resp.Header.Get("Content-Encoding"); got != "" || len(raw) != 0 {
		t.Errorf("got Content-Encoding %q and %d bytes, want an empty identity body", got, len(raw))
	}
}

func TestH2CUpgradeOfferStillCompressed(t *testing.T) {
	t.Parallel()
	// curl --http2 on http:// offers h2c; the proxy answers as HTTP/1.1.
	body := jsonBody(8 << 10)
	g := startGateway(t, "", serve(body, "application/json", false, nil))
	h := http.Header{"Accept-Encoding": {"gzip"}, "Connection": {"Upgrade, HTTP2-Settings"},
		"Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQCAAAAAAIAAAAA"}}
	resp, raw := fetch(t, g, "GET", "/", h, nil)
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("got Content-Encoding %q, want gzip", got)
	}
	if got := decode(t, "gzip", raw); !bytes.Equal(got, body) {
		t.Errorf("got %d decoded bytes, want %d", len(got), len(body))
	}
}

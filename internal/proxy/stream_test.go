package proxy

import (
	"bufio"
	"context"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// patternBlock has a prime length, so the stream does not repeat at
// buffer-sized periods.
var patternBlock = func() []byte {
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// pattern is an endless, cheap, non-constant byte stream.
type pattern struct{ off int }

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m := copy(b[n:], patternBlock[p.off:])
		n += m
		p.off = (p.off + m) % len(patternBlock)
	}
	return n, nil
}

func patternCRC(size int64) uint32 {
	h := crc32.NewIEEE()
	_, _ = io.Copy(h, io.LimitReader(&pattern{}, size))
	return h.Sum32()
}

// Not parallel: it measures the heap.
func TestProxyStreamsLargeBodiesWithBoundedMemory(t *testing.T) {
	const size = 64 << 20
	want := patternCRC(size)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := crc32.NewIEEE()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("X-Received", strconv.FormatInt(n, 10))
		w.Header().Set("X-Crc", strconv.FormatUint(uint64(h.Sum32()), 10))
		if r.URL.Query().Get("length") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		_, _ = io.Copy(w, io.LimitReader(&pattern{}, size))
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	g := startGateway(t, h, nil)

	tests := []struct {
		name          string
		chunkedUpload bool
		query         string
	}{
		{"length upload, chunked download", false, ""},
		{"chunked upload, length download", true, "?length=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = io.LimitReader(&pattern{}, size)
			if tt.chunkedUpload {
				body = struct{ io.Reader }{body} // hide the length
			}
			req, _ := http.NewRequest("POST", g.URL+"/big"+tt.query, body)
			if !tt.chunkedUpload {
				req.ContentLength = size
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			crc := crc32.NewIEEE()
			n, err := io.Copy(crc, resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if err != nil || n != size {
				t.Fatalf("got %d bytes (%v), want %d", n, err, size)
			}
			if crc.Sum32() != want {
				t.Fatal("downloaded body differs from what the upstream sent")
			}
			if got := resp.Header.Get("X-Received"); got != strconv.Itoa(size) {
				t.Fatalf("upstream received %s bytes, want %d", got, size)
			}
			if got := resp.Header.Get("X-Crc"); got != strconv.FormatUint(uint64(want), 10) {
				t.Fatal("uploaded body differs from what the client sent")
			}
			// Everything in this process (client, gateway, upstream)
			// together allocates a small fraction of what went through.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
				t.Errorf("allocated %d bytes while streaming 2×%d, want far less", alloc, size)
			}
			if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > size/8 {
				t.Errorf("heap in use grew by %d bytes, want far less than %d", grow, size)
			}
		})
	}
}

func TestProxyFlushesEventStreams(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	goUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(goUp.Close)
	rawNext := make(chan struct{})
	rawUp := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// HTTP/1.1 without length or chunking: the stream ends at close.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\ndata: one\n\n")
		<-rawNext
		_, _ = io.WriteString(c, "data: two\n\n")
	})
	tests := []struct {
		name string
		url  string
		next chan struct{}
	}{
		{"chunked", goUp.URL, next},
		{"until close", rawUp, rawNext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newProxy(t, tt.url, nil)
			g := startGateway(t, h, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/events", nil)
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			// The first event arrives while the upstream still holds the second.
			line, err := br.ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("got %q, %v, want the first event", line, err)
			}
			close(tt.next)
			rest, _ := io.ReadAll(br)
			if want := "\ndata: two\n\n"; string(rest) != want {
				t.Fatalf("got %q, want %q", rest, want)
			}
		})
	}
}

func TestProxyStreamsUntilClose(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("0123456789", 10000)
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+body)
	})
	h, tg := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	resp, err := g.client.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != body {
		t.Fatalf("got %d bytes, want %d", len(got), len(body))
	}
	if n := tg.Idle(); n != 0 {
		t.Fatalf("got %d idle connections, want 0", n)
	}
}

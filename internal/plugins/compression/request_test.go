package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// recorder is an upstream that reads the whole request body and records
// what it got.
type recorder struct {
	mu       sync.Mutex
	body     []byte
	header   http.Header
	length   int64
	chunked  bool
	received atomic.Int64 // body bytes read so far, also of broken bodies
	discard  bool         // count the body only
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	p := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(p)
		if !rec.discard {
			buf.Write(p[:n])
		}
		rec.received.Add(int64(n))
		if err != nil {
			break
		}
	}
	rec.mu.Lock()
	rec.body, rec.header, rec.length = buf.Bytes(), r.Header.Clone(), r.ContentLength
	rec.chunked = len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

func TestRequestDecompression(t *testing.T) {
	body := jsonBody(100 << 10)
	tests := []struct {
		name       string
		settings   string
		coding     string // Content-Encoding sent
		payload    []byte
		wantStatus int
		wantBody   []byte // what the upstream must get
		wantCE     string // Content-Encoding the upstream must see
	}{
		{"gzip", "decompress_requests: true", "gzip", encode(t, "gzip", body), 200, body, ""},
		{"br", "decompress_requests: true", "br", encode(t, "br", body), 200, body, ""},
		{"zstd", "decompress_requests: true", "zstd", encode(t, "zstd", body), 200, body, ""},
		{"case and spaces", "decompress_requests: true", " GZIP ", encode(t, "gzip", body), 200, body, ""},
		{"unknown coding passed on", "decompress_requests: true", "deflate", []byte("opaque"), 200, []byte("opaque"), "deflate"},
		{"layered codings passed on", "decompress_requests: true", "gzip, br", []byte("opaque"), 200, []byte("opaque"), "gzip, br"},
		{"off by default", "", "gzip", encode(t, "gzip", body[:100]), 200, encode(t, "gzip", body[:100]), "gzip"},
		{"corrupt gzip", "decompress_requests: true", "gzip", []byte("this is not gzip at all"), 400, nil, ""},
		{"truncated gzip", "decompress_requests: true", "gzip", encode(t, "gzip", body)[:2000], 400, nil, ""},
		{"corrupt zstd", "decompress_requests: true", "zstd", []byte("definitely not a zstd frame"), 400, nil, ""},
		{"corrupt br", "decompress_requests: true", "br", bytes.Repeat([]byte{0xff}, 64), 400, nil, ""},
		{"over the limit", "decompress_requests: true\nmax_decompressed_size: 50KiB", "gzip", encode(t, "gzip", body), 413, nil, ""},
		{"at the limit", "decompress_requests: true\nmax_decompressed_size: " + strconv.Itoa(len(body)), "br", encode(t, "br", body), 200, body, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			g := startGateway(t, tt.settings, rec)
			h := http.Header{"Content-Encoding": {tt.coding}, "Content-Type": {"application/json"}}
			resp, raw := fetch(t, g, "POST", "/upload", h, bytes.NewReader(tt.payload))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", resp.StatusCode, raw, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("got Content-Type %q, want problem JSON", ct)
				}
				return
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !bytes.Equal(rec.body, tt.wantBody) {
				t.Errorf("got upstream body of %d bytes, want %d", len(rec.body), len(tt.wantBody))
			}
			if got := rec.header.Get("Content-Encoding"); got != tt.wantCE {
				t.Errorf("got upstream Content-Encoding %q, want %q", got, tt.wantCE)
			}
			if tt.wantCE == "" && (!rec.chunked || rec.length != -1) {
				t.Errorf("got upstream length %d chunked %v, want a chunked body", rec.length, rec.chunked)
			}
		})
	}
}

// bomb returns a small body that decodes to total bytes of zeros:
// repeated gzip members or zstd frames of 1 MiB each, or one brotli
// stream.
func bomb(t *testing.T, coding string, total int) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var one bytes.Buffer
	switch coding {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
		_, _ = zw.Write(zeros)
		_ = zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&one, zstd.WithEncoderConcurrency(1))
		_, _ = zw.Write(zeros)
		_ = zw.Close()
	case "br":
		bw := brotli.NewWriterLevel(&one, 1)
		for range total >> 20 {
			_, _ = bw.Write(zeros)
		}
		_ = bw.Close()
		return one.Bytes()
	}
	return bytes.Repeat(one.Bytes(), total>>20)
}

func TestDecompressionBombIsRefused(t *testing.T) {
	// Not parallel: it measures the process's allocation.
	tests := []struct {
		coding   string
		total    int
		settings string
		limit    int64
	}{
		{"gzip", 1 << 30, "decompress_requests: true", DefaultMaxDecompressedSize},
		{"zstd", 1 << 30, "decompress_requests: true", DefaultMaxDecompressedSize},
		{"br", 16 << 20, "decompress_requests: true\nmax_decompressed_size: 1MiB", 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.coding, func(t *testing.T) {
			payload := bomb(t, tt.coding, tt.total)
			rec := &recorder{discard: true}
			g := startGateway(t, tt.settings, rec)
			h := http.Header{"Content-Encoding": {tt.coding}, "Content-Type": {"application/json"}}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp, raw := fetch(t, g, "POST", "/upload", h, bytes.NewReader(payload))
			runtime.ReadMemStats(&after)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("got status %d (%s), want 413", resp.StatusCode, raw)
			}
			if got := rec.received.Load(); got > tt.limit {
				t.Errorf("got %d bytes at the upstream, want at most the limit %d", got, tt.limit)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Errorf("got %d MiB allocated for a %d KiB body decoding to %d MiB, want under 32 MiB",
					grew>>20, len(payload)>>10, tt.total>>20)
			}
			t.Logf("%s: %d KiB compressed, %d KiB allocated", tt.coding, len(payload)>>10,
				(after.TotalAlloc-before.TotalAlloc)>>10)
		})
	}
}

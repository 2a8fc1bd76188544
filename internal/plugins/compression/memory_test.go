package compression

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
)

// TestLargeStreamKeepsMemoryFlat streams 100 MiB of JSON through the
// gateway per coding (16 MiB for gzip and br under the race detector) and checks that the client decodes the exact bytes
// while the process's heap stays flat: the body is never buffered.
func TestLargeStreamKeepsMemoryFlat(t *testing.T) {
	// Not parallel: it measures the process's heap.
	// 32 KiB made of a repeated 8 KiB piece of JSON: every coding finds
	// long matches, which keeps the race-detector run short.
	chunk := bytes.Repeat(jsonBody(8 << 10)[:8<<10], 4)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		total, _ := strconv.Atoi(r.URL.Query().Get("size"))
		w.Header().Set("Content-Type", "application/json")
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			total, limit := 100<<20, 32<<20
			if raceEnabled && coding != "zstd" {
				// Under the race detector gzip and br take minutes for
				// 100 MiB: they check the bytes of a shorter stream only
				// (the plain run checks their memory); zstd keeps the
				// full size and the check.
				total, limit = 8<<20, 0
				if coding == "br" {
					total = 2 << 20
				}
			}
			g := startGateway(t, "", up)
			req, _ := http.NewRequest("GET", g.URL+"/big?size="+strconv.Itoa(total), nil)
			req.Header.Set("Accept-Encoding", coding)

			var before, now runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			peak := before.HeapInuse

			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("got Content-Encoding %q, want %q", got, coding)
			}
			wire := &countingReader{r: resp.Body}
			dec := decoder(t, coding, wire)
			p := make([]byte, 64<<10)
			n, next := 0, 0
			for {
				m, err := dec.Read(p)
				for i := 0; i < m; {
					off := (n + i) % len(chunk)
					k := min(m-i, len(chunk)-off)
					if !bytes.Equal(p[i:i+k], chunk[off:off+k]) {
						t.Fatalf("got different bytes at offset %d", n+i)
					}
					i += k
				}
				n += m
				if n >= next {
					next += 8 << 20
					runtime.ReadMemStats(&now)
					peak = max(peak, now.HeapInuse)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("decode after %d bytes: %s", n, err.Error())
				}
			}
			runtime.ReadMemStats(&now)
			peak = max(peak, now.HeapInuse)
			if n != total {
				t.Fatalf("got %d bytes, want %d", n, total)
			}
			t.Logf("%s: %d MiB on the wire, peak HeapInuse +%d KiB, allocated %d KiB", coding,
				wire.n>>20, (int64(peak)-int64(before.HeapInuse))>>10, (now.TotalAlloc-before.TotalAlloc)>>10)
			if limit == 0 {
				return
			}
			if grew := int64(peak) - int64(before.HeapInuse); grew > int64(limit) {
				t.Errorf("got HeapInuse %d MiB over the start, want under %d MiB", grew>>20, limit>>20)
			}
			if grew := now.TotalAlloc - before.TotalAlloc; grew > uint64(2*limit) {
				t.Errorf("got %d MiB allocated for a %d MiB stream, want under %d MiB", grew>>20, total>>20, 2*limit>>20)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

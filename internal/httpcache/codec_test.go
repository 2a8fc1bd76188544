package httpcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// codecEntry4K is a typical JSON response: 4 KB body, a dozen headers,
// one Vary field.
func codecEntry4K() *Entry {
	var body bytes.Buffer
	for i := 0; body.Len() < 4096; i++ {
		fmt.Fprintf(&body, `{"id":%d,"name":"product %d","category":"books","price":%d.99},`, i, i, i%50)
	}
	now := time.Unix(1_795_000_000, 123456789)
	return &Entry{
		Status: 200,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Cache-Control":  {"public, max-age=60"},
			"Etag":           {`"5f3c-1a2b3c"`},
			"Last-Modified":  {"Thu, 26 Nov 2026 10:00:00 GMT"},
			"Date":           {"Fri, 27 Nov 2026 08:00:00 GMT"},
			"Vary":           {"Accept-Encoding"},
			"X-Request-Id":   {"0b6a8c2e7f1d4a3b"},
			"X-Served-By":    {"products-1"},
			"Content-Length": {fmt.Sprint(body.Len())},
			"Link":           {"</a>; rel=next", "</z>; rel=last"},
		},
		Body:         body.Bytes()[:4096],
		RequestTime:  now,
		ResponseTime: now.Add(3 * time.Millisecond),
		VaryNames:    []string{"Accept-Encoding"},
		VaryValues:   []string{"gzip, br"},
	}
}

// entryDiff describes how got differs from want ("" when equal). nil and
// empty slices count as equal; times compare as instants.
func entryDiff(got, want *Entry) string {
	switch {
	case got.Status != want.Status:
		return fmt.Sprintf("status %d, want %d", got.Status, want.Status)
	case !got.RequestTime.Equal(want.RequestTime):
		return fmt.Sprintf("request time %s, want %s", got.RequestTime, want.RequestTime)
	case !got.ResponseTime.Equal(want.ResponseTime):
		return fmt.Sprintf("response time %s, want %s", got.ResponseTime, want.ResponseTime)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Sprintf("body %q, want %q", got.Body, want.Body)
	case len(got.Header) != len(want.Header):
		return fmt.Sprintf("header %v, want %v", got.Header, want.Header)
	case !slices.Equal(got.VaryNames, want.VaryNames) || !slices.Equal(got.VaryValues, want.VaryValues):
		return fmt.Sprintf("vary %q=%q, want %q=%q", got.VaryNames, got.VaryValues, want.VaryNames, want.VaryValues)
	}
	for k, vs := range want.Header {
		gvs, ok := got.Header[k]
		if !ok || !slices.Equal(gvs, vs) {
			return fmt.Sprintf("header %s: %q, want %q", k, gvs, vs)
		}
	}
	return ""
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("abcdefgh"), 64<<10)
	random := make([]byte, 8<<10)
	for i := range random {
		random[i] = byte(i*7919 + i>>3*31 + i*i)
	}
	tests := []struct {
		name string
		e    *Entry
	}{
		{"minimal", &Entry{Status: 204}},
		{"typical 4k", codecEntry4K()},
		{"zero times and empty body", &Entry{Status: 304, Header: http.Header{"Etag": {`"x"`}}}},
		{"times before 1970", &Entry{Status: 200, RequestTime: time.Unix(-5, 7), ResponseTime: time.Unix(0, 0)}},
		{"header with no values", &Entry{Status: 200, Header: http.Header{"X-Empty": nil, "X-Blank": {""}}}},
		{"newlines and binary in values", &Entry{Status: 200, Header: http.Header{"X": {"a\nb", "\x00\xff"}}, Body: []byte{0, 1, 2}}},
		{"many vary fields", &Entry{Status: 200, VaryNames: []string{"Accept", "Accept-Language", "X-Tenant"}, VaryValues: []string{"*/*", "", "t1"}}},
		{"large compressible body", &Entry{Status: 200, Body: big}},
		{"incompressible body", &Entry{Status: 206, Body: random}},
		{"status 999", &Entry{Status: 999}},
		{"vary marker", &Entry{VaryNames: []string{"Accept", "X-Tenant"}, Body: []byte("3k2j1h")}},
		{"vary names and values of unequal length", &Entry{Status: 200, VaryNames: []string{"A"}, VaryValues: []string{"1", "2"}}},
	}
	for _, tt := range tests {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%t", tt.name, compress), func(t *testing.T) {
				t.Parallel()
				b := EncodeEntry(tt.e)
				if compress {
					b = EncodeEntryCompressed(tt.e)
				}
				got, err := DecodeEntry(b)
				if err != nil {
					t.Fatalf("DecodeEntry: %s", err)
				}
				if d := entryDiff(got, tt.e); d != "" {
					t.Fatalf("got %s", d)
				}
			})
		}
	}
}

func TestCodecCompressesOnlyWhenItHelps(t *testing.T) {
	t.Parallel()
	e := codecEntry4K()
	plain, packed := EncodeEntry(e), EncodeEntryCompressed(e)
	if packed[1] != codecFlagZstd || len(packed) >= len(plain)/2 {
		t.Fatalf("got %d compressed bytes (flags %#x) for %d plain, want under half, flagged", len(packed), packed[1], len(plain))
	}
	t.Logf("4 KB entry: %d bytes plain, %d compressed", len(plain), len(packed))
	small := &Entry{Status: 200, Body: []byte("ok")}
	if b := EncodeEntryCompressed(small); b[1] != 0 {
		t.Fatalf("got flags %#x for a tiny entry, want it stored plain", b[1])
	}
	noise := make([]byte, 4096)
	x := uint32(1)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	if b := EncodeEntryCompressed(&Entry{Status: 200, Body: noise}); b[1] != 0 {
		t.Fatalf("got flags %#x for random bytes, want them stored plain", b[1])
	}
}

func TestCodecEncodedSizeIsExact(t *testing.T) {
	t.Parallel()
	e := codecEntry4K()
	b := EncodeEntry(e)
	if len(b) != cap(b) {
		t.Fatalf("got len %d cap %d, want one exact allocation", len(b), cap(b))
	}
}

// TestCodecRejectsEveryTruncation cuts a record at every length and pads
// it: each must be an error, never a panic or a shorter entry.
func TestCodecRejectsEveryTruncation(t *testing.T) {
	t.Parallel()
	e := codecEntry4K()
	e.Body = e.Body[:300]
	for _, b := range [][]byte{EncodeEntry(e), EncodeEntryCompressed(e)} {
		for n := range len(b) {
			if _, err := DecodeEntry(b[:n]); err == nil {
				t.Fatalf("got no error for a record cut to %d of %d bytes (flags %#x)", n, len(b), b[1])
			}
		}
		if _, err := DecodeEntry(append(slices.Clip(b), 0)); err == nil {
			t.Fatalf("got no error for a record with a stray byte (flags %#x)", b[1])
		}
	}
}

func TestCodecRejectsCorruptRecords(t *testing.T) {
	rec := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	head := []byte{codecVersion, 0}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{codecVersion}},
		{"unknown version", rec([]byte{2, 0}, uv(200), []byte{0}, uv(0), uv(0), uv(0), uv(0))},
		{"unknown flag", rec([]byte{codecVersion, 2}, uv(200), []byte{0}, uv(0), uv(0), uv(0), uv(0))},
		{"status 99", rec(head, uv(99), []byte{0}, uv(0), uv(0), uv(0), uv(0))},
		{"status 1000", rec(head, uv(1000), []byte{0}, uv(0), uv(0), uv(0), uv(0))},
		{"unknown time bit", rec(head, uv(200), []byte{4}, uv(0), uv(0), uv(0), uv(0))},
		{"body longer than record", rec(head, uv(200), []byte{0}, uv(1<<40), uv(0), uv(0), uv(0))},
		{"huge header count", rec(head, uv(200), []byte{0}, uv(0), uv(1<<60), uv(0), uv(0))},
		{"huge value count", rec(head, uv(200), []byte{0}, uv(0), uv(1), uv(1), []byte("X"), uv(1<<62), uv(0), uv(0))},
		{"huge string length", rec(head, uv(200), []byte{0}, uv(0), uv(1), uv(1<<50), []byte("X"), uv(0), uv(0), uv(0))},
		{"huge vary count", rec(head, uv(200), []byte{0}, uv(0), uv(0), uv(1<<40), uv(0), uv(0))},
		{"missing vary values", rec(head, uv(200), []byte{0}, uv(0), uv(0), uv(0))},
		{"duplicate header", rec(head, uv(200), []byte{0}, uv(0), uv(2), uv(1), []byte("X"), uv(0), uv(1), []byte("X"), uv(0), uv(0), uv(0))},
		{"overlong varint", rec(head, uv(200), []byte{0}, uv(0), bytes.Repeat([]byte{0xff}, 11), uv(0), uv(0))},
		{"garbage zstd", rec([]byte{codecVersion, codecFlagZstd}, []byte("not a zstd frame at all"))},
	}
	// The records above differ from this valid one by one defect each.
	valid := rec(head, uv(200), []byte{0}, uv(1), uv(1), uv(1), []byte("X"), uv(1), uv(1), []byte("y"), uv(0), uv(0), []byte("b"))
	if e, err := DecodeEntry(valid); err != nil || e.Header.Get("X") != "y" || string(e.Body) != "b" {
		t.Fatalf("got %+v, %v for the valid record", e, err)
	}
	// Not parallel: it measures the bytes one rejection allocates.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeEntry(tt.b)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("got no error for %q", tt.b)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Fatalf("got %d bytes allocated rejecting a %d-byte record, want little", n, len(tt.b))
			}
		})
	}
	t.Run("wrapped as corrupt", func(t *testing.T) {
		if _, err := DecodeEntry([]byte{9, 9}); !errors.Is(err, errCodecCorrupt) {
			t.Fatalf("got %v, want errCodecCorrupt", err)
		}
	})
}

// TestCodecRejectsDecompressionBomb feeds a small zstd frame of 65 MiB of
// zeros: over the 64 MiB bound, it is an error.
func TestCodecRejectsDecompressionBomb(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	buf.Write([]byte{codecVersion, codecFlagZstd})
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatalf("zstd writer: %s", err)
	}
	if _, err := io.CopyN(zw, zeroReader{}, codecMaxDecoded+1<<20); err != nil {
		t.Fatalf("compress: %s", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("compress: %s", err)
	}
	if buf.Len() > 64<<10 {
		t.Fatalf("got a %d-byte bomb, want a small one", buf.Len())
	}
	if _, err := DecodeEntry(buf.Bytes()); err == nil {
		t.Fatal("got no error for 65 MiB of compressed zeros, want the 64 MiB bound")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func FuzzDecodeEntry(f *testing.F) {
	small := codecEntry4K()
	small.Body = small.Body[:400]
	f.Add(EncodeEntry(small))
	f.Add(EncodeEntryCompressed(small))
	f.Add(EncodeEntry(&Entry{Status: 200}))
	f.Add(EncodeEntry(&Entry{Status: 200, Header: http.Header{"A": {"b", ""}}, VaryNames: []string{"X"}, VaryValues: []string{"y"}}))
	f.Add([]byte{codecVersion, 0, 0xc8, 0x01, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same entry.
		for _, enc := range []func(*Entry) []byte{EncodeEntry, EncodeEntryCompressed} {
			again, err := DecodeEntry(enc(e))
			if err != nil {
				t.Fatalf("re-decode: %s", err)
			}
			if d := entryDiff(again, e); d != "" {
				t.Fatalf("round trip changed the entry: got %s", d)
			}
		}
		if len(e.Header) > len(b) || len(e.VaryNames) > len(b) {
			t.Fatalf("got %d headers and %d vary fields from %d bytes", len(e.Header), len(e.VaryNames), len(b))
		}
		if e.Status != 0 && (e.Status < 100 || e.Status > 999) {
			t.Fatalf("got status %d, want 0 or 100-999", e.Status)
		}
	})
}

func BenchmarkCodec4K(b *testing.B) {
	e := codecEntry4K()
	plain, packed := EncodeEntry(e), EncodeEntryCompressed(e)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			_ = EncodeEntry(e)
		}
	})
	b.Run("encode-zstd", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			_ = EncodeEntryCompressed(e)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := DecodeEntry(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-zstd", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := DecodeEntry(packed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

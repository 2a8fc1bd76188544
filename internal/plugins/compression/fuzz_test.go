package compression

import (
	"bytes"
	"io"
	"slices"
	"testing"
)

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip", "gzip, br;q=0.5", "*;q=0", "identity;q=0, zstd;q=0.001",
		"br;q=1.000, gzip;level=1;q=0.9", ";;,,q=", "GZIP;Q=0.5"} {
		f.Add(s)
	}
	c := newCompressor(newSpec())
	f.Fuzz(func(t *testing.T, accept string) {
		got := c.negotiate([]string{accept})
		if got != encIdentity && !slices.Contains(c.prefs, got) {
			t.Fatalf("got coding %d, which is not offered", got)
		}
	})
}

func FuzzDecodedBody(f *testing.F) {
	f.Add(byte(0), encode(f, "gzip", []byte("hello, hello, hello")))
	f.Add(byte(1), encode(f, "br", []byte("hello, hello, hello")))
	f.Add(byte(2), encode(f, "zstd", []byte("hello, hello, hello")))
	f.Add(byte(0), []byte("\x1f\x8b\x08\x00garbage"))
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		const max = 1 << 16
		src := io.NopCloser(bytes.NewReader(data))
		b := &decodedBody{src: src, kind: encoding(kind % numEncodings), max: max}
		b.raw = rawLimiter{r: src, max: max}
		n, _ := io.Copy(io.Discard, b)
		b.release()
		if n > max {
			t.Fatalf("got %d decoded bytes, want at most %d", n, max)
		}
	})
}

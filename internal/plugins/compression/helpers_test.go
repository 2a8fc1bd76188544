package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// startGateway configures the plugin from settings (YAML, "" for the
// defaults) and starts it in the shared test gateway, in front of an
// upstream running up.
func startGateway(t testing.TB, settings string, up http.Handler) *plugintest.Gateway {
	t.Helper()
	return plugintest.Start(t, plugintest.Options{Respond: up}, plugintest.Configure(t, Registration(), settings))
}

// fetch sends method to path with header and body and returns the
// response with its raw (still encoded) body read.
func fetch(t testing.TB, g *plugintest.Gateway, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return g.Fetch(t, g.NewRequest(t, method, path, body, header))
}

// decoder returns a reader of r decoded as coding, with the standard
// library's gzip and the libraries' br and zstd decoders.
func decoder(t testing.TB, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip header: %s", err.Error())
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	t.Fatalf("unknown coding %q", coding)
	return nil
}

// decode decodes raw as coding.
func decode(t testing.TB, coding string, raw []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(decoder(t, coding, bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("decode %s: %s", coding, err.Error())
	}
	return out
}

// encode compresses b as coding with the libraries' encoders.
func encode(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriterLevel(&buf, 1)
	case "zstd":
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonBody returns about n bytes of JSON-looking text.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`,"name":"item `)
		b.WriteString(strconv.Itoa(i * 7919 % 1000))
		b.WriteString(`","tags":["alpha","beta"],"price":`)
		b.WriteString(strconv.Itoa(i * 31 % 997))
		b.WriteString("}")
	}
	b.WriteString("]")
	return b.Bytes()
}

// serve returns an upstream that answers with body, typ and the extra
// header; chunked hides the length.
func serve(body []byte, typ string, chunked bool, extra http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range extra {
			w.Header()[k] = v
		}
		if typ != "" {
			w.Header().Set("Content-Type", typ)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing: no type at all
		}
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(http.StatusOK)
		if chunked {
			// Two writes with a flush between: the proxy sees chunks.
			half := len(body) / 2
			_, _ = w.Write(body[:half])
			w.(http.Flusher).Flush()
			_, _ = w.Write(body[half:])
			return
		}
		_, _ = w.Write(body)
	})
}

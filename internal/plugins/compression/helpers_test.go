package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/upstream"
)

// gateway is a real edge (Exchange in the context, as the gateway's
// snapshot does) → compression → proxy → a real upstream.
type gateway struct {
	URL    string
	client *http.Client
}

// startGateway configures the plugin from settings (YAML, "" for the
// defaults) and starts it in front of an upstream running up.
func startGateway(t testing.TB, settings string, up http.Handler) *gateway {
	t.Helper()
	c := authtest.Configure(t, Registration(), settings)
	mw, err := c.Reg.Build(c.Spec, &plugin.BuildEnv{Route: "test"})
	if err != nil {
		t.Fatalf("build: %s", err.Error())
	}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	reg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = reg.Close() })
	svc, err := reg.Service(config.Service{Name: "s", URL: upSrv.URL})
	if err != nil {
		t.Fatalf("service: %s", err.Error())
	}
	h := mw(proxy.New(proxy.Options{Service: svc}))
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &plugin.Exchange{Start: time.Now(), UpstreamPath: r.URL.EscapedPath(), RequestID: "req-1"}
		h.ServeHTTP(w, r.WithContext(plugin.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(edge.Close)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &gateway{URL: edge.URL, client: &http.Client{Transport: tr}}
}

// do sends method to path with header and returns the response with its
// raw (still encoded) body read.
func (g *gateway) do(t testing.TB, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
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

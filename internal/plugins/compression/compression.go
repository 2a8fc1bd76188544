// Package compression implements the compression plugin: responses are
// encoded with gzip, br (Brotli) or zstd as the client's Accept-Encoding
// allows, and, when enabled, request bodies sent compressed are decoded
// before they go upstream.
//
// # Response flow
//
//	ServeHTTP
//	 ├─ HEAD or a WebSocket upgrade → untouched (101 and Hijack work as without the plugin)
//	 ├─ negotiate: Accept-Encoding q-values × server preference → coding or identity
//	 └─ wrap the ResponseWriter; at WriteHeader decide:
//	      ├─ not eligible (1xx/204/304, 206 or Content-Range, Content-Encoding already set,
//	      │  Cache-Control: no-transform, type outside content_types, text/event-stream)
//	      │     → pass through untouched
//	      ├─ eligible, client accepts no coding → add Vary: Accept-Encoding, pass through
//	      ├─ Content-Length under min_size → pass through
//	      ├─ Content-Length at least min_size → compress
//	      └─ length unknown → buffer up to min_size (Flush waits too): a body that
//	         ends first is sent as it is; one that reaches it is compressed
//
// Compressing sets Content-Encoding and Vary, drops Content-Length and
// Accept-Ranges and weakens a strong ETag. The body streams through a
// pooled encoder (one sync.Pool per coding and level): Flush flushes the
// encoder and then the connection, and the encoder is closed (the stream's
// trailer written) when the handler returns. A handler that panics (the
// proxy aborting a broken upstream stream) leaves the stream unterminated,
// so the client sees the truncation.
//
// # Request decoding
//
// With decompress_requests, a request body whose Content-Encoding is
// exactly one of gzip, br or zstd is decoded on the way upstream:
// Content-Encoding and Content-Length are removed and the body is sent
// chunked. The decoded size is capped (an *http.MaxBytesError past
// max_decompressed_size, which the proxy answers with 413); a corrupt
// stream fails the body read (400). Other codings pass untouched.
package compression

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// Name is the plugin's YAML key.
const Name = "compression"

// encoding is a content coding the plugin produces.
type encoding int8

// The codings; encIdentity means none.
const (
	encIdentity encoding = -1
	encGzip     encoding = 0
	encBrotli   encoding = 1
	encZstd     encoding = 2
	// numEncodings counts the real codings.
	numEncodings = 3
)

// Registration declares the compression pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseCompression,
		Spec:  func() pipeline.Spec { return newSpec() },
		Build: build,
	}
}

// compressor is one compiled compression instance.
type compressor struct {
	prefs   []encoding             // server preference order
	levels  [numEncodings]int      // level per coding
	pools   [numEncodings]*encPool // pool per offered coding
	minSize int
	types   typeMatcher
	// decode, when set, decodes compressed request bodies.
	decode    bool
	maxDecode int64
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	c := newCompressor(s.(*Spec))
	for _, e := range c.prefs {
		if err := c.pools[e].err; err != nil {
			return nil, fmt.Errorf("compression: %s level %d: %w", encodingNames[e], c.levels[e], err)
		}
	}
	return c.middleware, nil
}

// newCompressor compiles a validated spec.
func newCompressor(spec *Spec) *compressor {
	c := &compressor{minSize: int(spec.MinSize), decode: spec.DecompressRequests,
		maxDecode: DefaultMaxDecompressedSize}
	if spec.MaxDecompressedSize != nil {
		c.maxDecode = int64(*spec.MaxDecompressedSize)
	}
	for e := range numEncodings {
		c.levels[e] = levelRange[e].def
	}
	for name, lv := range spec.Levels {
		if e, ok := parseEncoding(name); ok {
			c.levels[e] = lv
		}
	}
	for _, name := range spec.Encodings {
		if e, ok := parseEncoding(name); ok {
			c.prefs = append(c.prefs, e)
			c.pools[e] = poolFor(e, c.levels[e])
		}
	}
	c.types = newTypeMatcher(spec.ContentTypes)
	return c
}

func (c *compressor) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body *decodedBody
		if c.decode {
			body = c.decodeRequest(r)
		}
		if r.Method == http.MethodHead || isWebSocket(r) {
			next.ServeHTTP(w, r)
			body.release()
			return
		}
		cw := getWriter(c, w, r.Header["Accept-Encoding"])
		next.ServeHTTP(cw, r)
		cw.finish()
		putWriter(cw)
		body.release()
	})
}

// isWebSocket reports whether r asks to switch to WebSocket, the upgrade
// the proxy tunnels. Other Upgrade offers (curl's h2c) are answered as
// plain HTTP and compressed as usual; a 101 passes the wrapper untouched
// anyway.
func isWebSocket(r *http.Request) bool {
	return hasToken(r.Header["Connection"], "upgrade") && hasToken(r.Header["Upgrade"], "websocket")
}

// typeMatcher tells the media types to compress.
type typeMatcher struct {
	exact    map[string]bool
	majors   []string // "text" for "text/*"
	suffixes []string // "+json" for "*/*+json"
}

func newTypeMatcher(list []string) typeMatcher {
	m := typeMatcher{exact: make(map[string]bool)}
	for _, ct := range list {
		ct = strings.ToLower(ct)
		typ, sub, _ := strings.Cut(ct, "/")
		switch {
		case typ == "*":
			m.suffixes = append(m.suffixes, sub[1:])
		case sub == "*":
			m.majors = append(m.majors, typ)
		default:
			m.exact[ct] = true
		}
	}
	return m
}

// mediaType returns the lower-cased media type of a Content-Type value,
// without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// match reports whether the media type mt (lower case, no parameters) is
// to be compressed.
func (m *typeMatcher) match(mt string) bool {
	if m.exact[mt] {
		return true
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for _, major := range m.majors {
		if typ == major {
			return true
		}
	}
	for _, suf := range m.suffixes {
		if len(sub) > len(suf) && strings.HasSuffix(sub, suf) {
			return true
		}
	}
	return false
}

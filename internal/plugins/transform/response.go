package transform

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// ResponseRegistration declares the response_transform pipeline.
func ResponseRegistration() pipeline.Registration {
	return pipeline.Registration{
		Name:  "response_transform",
		Phase: pipeline.PhaseResponseTransform,
		Spec:  func() pipeline.Spec { return &ResponseSpec{Body: ResponseBodySpec{MaxSize: DefaultMaxBody}} },
		Build: buildResponse,
	}
}

// responseTransform is the compiled response_transform.
type responseTransform struct {
	headers headerOps
	status  map[int]int
	allow   *trie
	deny    *trie
	rename  *trie
	max     int64
}

func (t *responseTransform) bodyOps() bool {
	return t.allow != nil || t.deny != nil || t.rename != nil
}

func compileResponse(s *ResponseSpec, p config.Path) (*responseTransform, error) {
	var es errs
	bp := p.Key("body")
	t := &responseTransform{
		headers: compileHeaderOps(&s.Headers, true, p.Key("headers"), &es),
		status:  compileStatus(s.Status, p.Key("status"), &es),
		allow:   compilePaths(s.Body.Allow, bp.Key("allow"), &es),
		deny:    compilePaths(s.Body.Deny, bp.Key("deny"), &es),
		rename:  compileRenames(s.Body.Rename, bp.Key("rename"), &es),
		max:     maxSize(s.Body.MaxSize),
	}
	if len(s.Body.Allow) > 0 && len(s.Body.Deny) > 0 {
		es.add(bp.Errorf("set allow or deny, not both"))
	}
	es.add(checkMaxSize(s.Body.MaxSize, bp.Key("max_size")))
	if len(es) > 0 {
		return nil, joinErrs(es)
	}
	return t, nil
}

func buildResponse(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	t, err := compileResponse(s.(*ResponseSpec), config.Path{})
	if err != nil {
		return nil, err
	}
	if t.headers.empty() && len(t.status) == 0 && !t.bodyOps() {
		return nil, nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.serve(w, r, next)
		})
	}, nil
}

var writerPool = sync.Pool{New: func() any { return new(respWriter) }}

// serve runs next with a writer that transforms the response.
func (t *responseTransform) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil {
		ex = &pipeline.Exchange{Start: time.Now(), UpstreamPath: r.URL.EscapedPath()}
	}
	if t.bodyOps() {
		// A compressed body could not be filtered; the compression
		// plugin, outside, encodes the result again.
		delete(r.Header, "Accept-Encoding")
	}
	rw := writerPool.Get().(*respWriter)
	*rw = respWriter{w: w, r: r, ex: ex, t: t}
	defer func() {
		if rw.buf != nil {
			putBuffer(rw.buf)
		}
		*rw = respWriter{}
		writerPool.Put(rw)
	}()
	next.ServeHTTP(rw, r)
	rw.finish()
}

// respWriter applies response_transform to the response written through
// it. The head is changed when it is written; a JSON body that qualifies
// is held until the handler returns (or until it passes max_size, when
// the head and the bytes so far are sent and the rest streams).
type respWriter struct {
	w  http.ResponseWriter
	r  *http.Request
	ex *pipeline.Exchange
	t  *responseTransform

	wroteHeader bool
	status      int // the status the client gets
	buffering   bool
	discard     bool // the client status carries no body
	buf         *bytes.Buffer
}

var (
	_ http.ResponseWriter = (*respWriter)(nil)
	_ http.Flusher        = (*respWriter)(nil)
)

// Header returns the response header map.
func (rw *respWriter) Header() http.Header { return rw.w.Header() }

// Unwrap returns the underlying writer, for http.ResponseController
// (Hijack for protocol upgrades, deadlines).
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }

// WriteHeader transforms the head; informational heads (101 included) go
// out untouched.
func (rw *respWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code < 200 {
		rw.w.WriteHeader(code)
		return
	}
	rw.wroteHeader = true
	t, ex, h := rw.t, rw.ex, rw.w.Header()
	upstream := ex.Err == nil // gateway-made errors keep their status and body

	if !t.headers.empty() {
		in := input{r: rw.r, ex: ex, status: code, latency: time.Since(ex.Start)}
		var arr [16]string
		vals := arr[:0]
		for _, nv := range t.headers.set {
			vals = append(vals, nv.tmpl.render(&in, true))
		}
		for _, nv := range t.headers.add {
			vals = append(vals, nv.tmpl.render(&in, true))
		}
		t.headers.apply(h, vals)
	}
	out := code
	if to, ok := t.status[code]; ok && upstream {
		out = to
	}
	rw.status = out
	if out != code && (out == http.StatusNoContent || out == http.StatusNotModified) {
		rw.discard = true
		delete(h, "Content-Length")
	}
	if upstream && !rw.discard && t.bodyOps() && rw.bufferable(h, code) {
		rw.buffering = true
		rw.buf = getBuffer()
		return
	}
	rw.w.WriteHeader(out)
}

// bufferable reports whether the response body is JSON that the body
// operations may rewrite: not compressed, not partial, no trailers, not
// declared larger than max_size.
func (rw *respWriter) bufferable(h http.Header, code int) bool {
	if rw.r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified ||
		code == http.StatusPartialContent || len(rw.r.Header["Upgrade"]) > 0 || len(h["Trailer"]) > 0 || encoded(h) {
		return false
	}
	ct := ""
	if vs := h["Content-Type"]; len(vs) > 0 {
		ct = vs[0]
	}
	if !isJSON(ct) {
		return false
	}
	if vs := h["Content-Length"]; len(vs) > 0 {
		n, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
		if err != nil || n > rw.t.max {
			return false
		}
	}
	return true
}

// Write buffers or passes body bytes.
func (rw *respWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	switch {
	case rw.discard:
		return len(p), nil
	case !rw.buffering:
		return rw.w.Write(p)
	case int64(rw.buf.Len()+len(p)) <= rw.t.max:
		return rw.buf.Write(p)
	}
	// Past max_size: send what was held, unchanged, and stream the rest.
	rw.buffering = false
	rw.w.WriteHeader(rw.status)
	if _, err := rw.w.Write(rw.buf.Bytes()); err != nil {
		return 0, err
	}
	return rw.w.Write(p)
}

// Flush sends buffered data to the client, unless the body is being held
// for rewriting.
func (rw *respWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush reporting the underlying writer's error.
func (rw *respWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.buffering {
		return nil
	}
	return http.NewResponseController(rw.w).Flush()
}

// finish sends a held body, rewritten when it is valid JSON.
func (rw *respWriter) finish() {
	if !rw.buffering {
		return
	}
	rw.buffering = false
	h := rw.w.Header()
	body := rw.buf.Bytes()
	out := getBuffer()
	defer putBuffer(out)
	if rw.t.filter(body, out) {
		body = out.Bytes()
		if vs := h["Etag"]; len(vs) > 0 && !strings.HasPrefix(vs[0], "W/") {
			h["Etag"] = []string{"W/" + vs[0]}
		}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	rw.w.WriteHeader(rw.status)
	_, _ = rw.w.Write(body)
}

// filter applies allow or deny, then rename, to the JSON document src and
// writes the result into out in one pass (see stream.go): members keep
// their order and values their exact text. It reports false, leaving the
// body as it is, when src is not valid JSON (or nests deeper than
// maxDepth) or an allow-list keeps nothing of a scalar document.
func (t *responseTransform) filter(src []byte, out *bytes.Buffer) bool {
	return filterStream(src, t.allow, t.deny, t.rename, out)
}

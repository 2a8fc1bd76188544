// Package transform implements the request_transform and response_transform
// plugins.
//
// request_transform changes what the upstream receives: headers, query
// parameters, the path, the Host header and JSON bodies. For one request
// it runs in this order:
//
//  1. the JSON body (when body operations are configured): read up to
//     max_size, decoded, changed (remove, rename, set, add), encoded, with
//     Content-Length set to the new size;
//  2. every template value is rendered, from the request as it arrived at
//     the plugin;
//  3. headers, then query parameters, each in the order remove, rename,
//     set, add;
//  4. the path rewrite, then the host.
//
// response_transform changes what the client receives: on the response
// head it renders its templates ($(status), $(latency_ms) included), applies
// the header operations (remove, rename, set, add) and maps the status;
// JSON bodies within max_size are buffered, filtered (allow or deny, then
// rename) and sent with a new Content-Length. Everything else, and
// in particular event streams and protocol upgrades, streams through.
//
// Values may be templates with $(var) references (see parseTemplate),
// parsed once at build time. Dotted body paths walk objects and, where
// they meet an array, every element of it.
package transform

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// maxBodyLimit bounds max_size: bodies are held in memory while rewritten.
const maxBodyLimit = 64 << 20

// RequestRegistration declares the request_transform pipeline.
func RequestRegistration() pipeline.Registration {
	return pipeline.Registration{
		Name:  "request_transform",
		Phase: pipeline.PhaseRequestTransform,
		Spec: func() pipeline.Spec {
			return &RequestSpec{Body: RequestBodySpec{MaxSize: DefaultMaxBody, OnInvalid: "pass"}}
		},
		Build: buildRequest,
	}
}

// requestTransform is the compiled request_transform.
type requestTransform struct {
	headers headerOps
	query   queryOps
	path    *pathRewrite
	host    *template
	body    *requestBody
}

// requestBody are the compiled body operations.
type requestBody struct {
	remove *trie
	rename *trie
	set    []pathValue
	add    []pathValue
	max    int64
	reject bool
}

func compileRequest(s *RequestSpec, p config.Path) (*requestTransform, error) {
	var es errs
	t := &requestTransform{
		headers: compileHeaderOps(&s.Headers, false, p.Key("headers"), &es),
		query:   compileQueryOps(&s.Query, p.Key("query"), &es),
		path:    compilePath(s.Path, p.Key("path"), &es),
		host:    compileHost(s.Host, p.Key("host"), &es),
	}
	bp := p.Key("body")
	switch s.Body.OnInvalid {
	case "", "pass", "reject":
	default:
		es.add(bp.Key("on_invalid").Errorf("must be pass or reject"))
	}
	es.add(checkMaxSize(s.Body.MaxSize, bp.Key("max_size")))
	if !s.Body.empty() {
		t.body = &requestBody{
			remove: compilePaths(s.Body.Remove, bp.Key("remove"), &es),
			rename: compileRenames(s.Body.Rename, bp.Key("rename"), &es),
			set:    compilePathValues(s.Body.Set, bp.Key("set"), &es),
			add:    compilePathValues(s.Body.Add, bp.Key("add"), &es),
			max:    maxSize(s.Body.MaxSize),
			reject: s.Body.OnInvalid == "reject",
		}
		for _, k := range sortedKeys(s.Body.Add) {
			if _, both := s.Body.Set[k]; both {
				es.add(bp.Key("add").Key(k).Errorf("path %q is both set and added: keep one", k))
			}
		}
	}
	if len(es) > 0 {
		return nil, joinErrs(es)
	}
	return t, nil
}

func checkMaxSize(s config.ByteSize, p config.Path) error {
	if s < 1 || s > maxBodyLimit {
		return p.Errorf("must be between 1 byte and 64MiB")
	}
	return nil
}

func buildRequest(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	t, err := compileRequest(s.(*RequestSpec), config.Path{})
	if err != nil {
		return nil, err
	}
	if t.headers.empty() && t.query.empty() && t.path == nil && t.host == nil && t.body == nil {
		return nil, nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.serve(w, r, next)
		})
	}, nil
}

// serve changes r and hands it to next.
func (t *requestTransform) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil {
		ex = &pipeline.Exchange{UpstreamPath: r.URL.EscapedPath()}
	}
	in := input{r: r, ex: ex}
	if t.body != nil {
		buf, ok := t.body.apply(w, r, &in)
		if buf != nil {
			defer putBuffer(buf)
		}
		if !ok {
			return
		}
	}

	// Render every value from the request as it arrived.
	var arr [16]string
	vals := arr[:0]
	for _, nv := range t.headers.set {
		vals = append(vals, nv.tmpl.render(&in, true))
	}
	for _, nv := range t.headers.add {
		vals = append(vals, nv.tmpl.render(&in, true))
	}
	nh := len(vals)
	for _, nv := range t.query.set {
		vals = append(vals, nv.tmpl.render(&in, false))
	}
	for _, nv := range t.query.add {
		vals = append(vals, nv.tmpl.render(&in, false))
	}
	host := ""
	if t.host != nil {
		host = t.host.render(&in, true)
	}

	t.headers.apply(r.Header, vals[:nh])
	if !t.query.empty() {
		if q, changed := t.query.apply(r.URL.RawQuery, vals[nh:]); changed {
			r.URL.RawQuery = q
			r.URL.ForceQuery = false
		}
	}
	if pr := t.path; pr != nil {
		path := ex.UpstreamPath
		if m := pr.re.FindStringSubmatchIndex(path); m != nil {
			var pa [256]byte
			if np := pr.re.ExpandString(pa[:0], pr.replacement, path, m); len(np) > 0 && np[0] == '/' {
				ex.UpstreamPath = string(np)
			}
		}
	}
	if host != "" && validHost(host) {
		ex.UpstreamHost = host
	}
	next.ServeHTTP(w, r)
}

// validHost reports whether a rendered host is made of the characters of
// a host name, an IP literal and a port; anything else (a client-supplied
// value with spaces or "/") leaves the Host header as the service sets it.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return len(s) <= 255
}

// apply runs the header operations on h; vals are the rendered set values
// followed by the add values.
func (o *headerOps) apply(h http.Header, vals []string) {
	for _, name := range o.remove {
		delete(h, name)
	}
	for _, rn := range o.rename {
		if vs, ok := h[rn.from]; ok {
			delete(h, rn.from)
			h[rn.to] = vs
		}
	}
	for i, nv := range o.set {
		setHeader(h, nv.name, vals[i])
	}
	for i, nv := range o.add {
		if len(h[nv.name]) == 0 {
			setHeader(h, nv.name, vals[len(o.set)+i])
		}
	}
}

// setHeader replaces the values of name with v, or removes name when v is
// empty. It reuses the existing value slice when there is one.
func setHeader(h http.Header, name, v string) {
	if v == "" {
		delete(h, name)
		return
	}
	if vs := h[name]; len(vs) > 0 {
		vs[0] = v
		h[name] = vs[:1]
		return
	}
	h[name] = []string{v}
}

// apply rewrites the raw query raw; vals are the rendered set values
// followed by the add values. Parameters no operation touches keep their
// raw text and their order; changed and new ones are encoded as
// url.QueryEscape does. It reports whether anything changed.
func (o *queryOps) apply(raw string, vals []string) (string, bool) {
	var arr [512]byte
	out := arr[:0]
	var setSeen, addPresent uint64
	changed := false
	for rest := raw; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		if seg == "" {
			changed = true
			continue
		}
		k, v, hasEq := strings.Cut(seg, "=")
		name := decodeQuery(k)
		if slices.Contains(o.remove, name) {
			changed = true
			continue
		}
		renamed := false
		for _, rn := range o.rename {
			if rn.from == name {
				name, renamed, changed = rn.to, true, true
				break
			}
		}
		if i := indexNamed(o.set, name); i >= 0 {
			changed = true
			if setSeen&(1<<i) == 0 && vals[i] != "" {
				setSeen |= 1 << i
				out = appendParam(out, name, vals[i])
			}
			continue
		}
		if i := indexNamed(o.add, name); i >= 0 {
			addPresent |= 1 << i
		}
		if len(out) > 0 {
			out = append(out, '&')
		}
		if renamed {
			out = appendQueryEscape(out, name)
		} else {
			out = append(out, k...)
		}
		if hasEq {
			out = append(out, '=')
			out = append(out, v...)
		}
	}
	for i, nv := range o.set {
		if setSeen&(1<<i) == 0 && vals[i] != "" {
			out = appendParam(out, nv.name, vals[i])
			changed = true
		}
	}
	for i, nv := range o.add {
		if v := vals[len(o.set)+i]; addPresent&(1<<i) == 0 && v != "" {
			out = appendParam(out, nv.name, v)
			changed = true
		}
	}
	if !changed {
		return raw, false
	}
	return string(out), true
}

func indexNamed(list []namedValue, name string) int {
	for i := range list {
		if list[i].name == name {
			return i
		}
	}
	return -1
}

func appendParam(out []byte, name, v string) []byte {
	if len(out) > 0 {
		out = append(out, '&')
	}
	out = appendQueryEscape(out, name)
	out = append(out, '=')
	return appendQueryEscape(out, v)
}

// appendQueryEscape appends s escaped as url.QueryEscape escapes it.
func appendQueryEscape(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// isJSON reports whether the Content-Type is application/json or a
// +json type.
func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	if strings.EqualFold(mt, "application/json") {
		return true
	}
	if len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json") {
		// Check the shape (type/subtype) without allocating on the common path.
		if _, _, err := mime.ParseMediaType(mt); err == nil {
			return true
		}
	}
	return false
}

// encoded reports whether Content-Encoding names a coding other than
// identity.
func encoded(h http.Header) bool {
	for _, v := range h["Content-Encoding"] {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

// putBuffer returns b to the pool unless it grew very large.
func putBuffer(b *bytes.Buffer) {
	if b.Cap() > 4<<20 {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// bodyReader is a replacement request body that closes the original.
type bodyReader struct {
	io.Reader
	orig io.Closer
}

func (b *bodyReader) Close() error { return b.orig.Close() }

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// apply rewrites a JSON request body. It returns the pooled buffer the
// new body lives in (to release once the request is done), and false when
// it answered the request itself (invalid JSON with on_invalid: reject).
func (b *requestBody) apply(w http.ResponseWriter, r *http.Request, in *input) (*bytes.Buffer, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || r.ContentLength > b.max {
		return nil, true
	}
	ct := ""
	if vs := r.Header["Content-Type"]; len(vs) > 0 {
		ct = vs[0]
	}
	if !isJSON(ct) || encoded(r.Header) {
		return nil, true
	}
	src := getBuffer()
	n, err := src.ReadFrom(io.LimitReader(r.Body, b.max+1))
	switch {
	case err != nil:
		// A client or size-limit error: the proxy sees it as it would have.
		r.Body = &bodyReader{io.MultiReader(bytes.NewReader(src.Bytes()), errReader{err}), r.Body}
		return src, true
	case n > b.max:
		// Too large: forward what was read and the rest, unchanged.
		r.Body = &bodyReader{io.MultiReader(bytes.NewReader(src.Bytes()), r.Body), r.Body}
		return src, true
	case n == 0:
		r.Body = http.NoBody
		return src, true
	}
	out := getBuffer()
	if !b.rewrite(src.Bytes(), out, in) {
		putBuffer(out)
		if b.reject {
			putBuffer(src)
			problem.Write(w, r, http.StatusBadRequest, "", "request body is not valid JSON")
			return nil, false
		}
		setBody(r, src.Bytes())
		return src, true
	}
	putBuffer(src)
	setBody(r, out.Bytes())
	return out, true
}

// setBody makes p the request body, with its length.
func setBody(r *http.Request, p []byte) {
	orig := r.Body
	r.Body = &bodyReader{bytes.NewReader(p), orig}
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(p)), nil }
	r.ContentLength = int64(len(p))
	r.TransferEncoding = nil
	r.Header["Content-Length"] = []string{strconv.Itoa(len(p))}
}

// rewrite decodes src, applies the operations and encodes the result into
// out. It reports false when src is not one valid JSON value.
func (b *requestBody) rewrite(src []byte, out *bytes.Buffer, in *input) bool {
	v, ok := decodeJSON(src)
	if !ok {
		return false
	}
	if b.remove != nil {
		deny(v, b.remove)
	}
	if b.rename != nil {
		renameAll(v, b.rename)
	}
	for _, pv := range b.set {
		setPath(v, pv.segs, pv.v, false, in)
	}
	for _, pv := range b.add {
		setPath(v, pv.segs, pv.v, true, in)
	}
	return encodeJSON(out, v) == nil
}

// decodeJSON decodes exactly one JSON value, keeping numbers as written.
func decodeJSON(src []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// encodeJSON writes v as compact JSON without HTML escaping.
func encodeJSON(out *bytes.Buffer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	out.Truncate(out.Len() - 1) // Encode ends with a newline
	return nil
}

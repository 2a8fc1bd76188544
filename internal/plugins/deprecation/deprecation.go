// Package deprecation implements the deprecation plugin: it tells clients
// that the API version a route serves is deprecated, and when it will stop
// working, with standard response headers:
//
//	Deprecation: @1767225600                                (RFC 9745)
//	Sunset: Wed, 01 Jul 2026 00:00:00 GMT                   (RFC 8594)
//	Link: <https://example.com/migrate>; rel="deprecation"; type="text/html"
//	Link: <https://example.com/sunset>; rel="sunset"
//
// The values are computed once in Build. The plugin wraps the response
// writer and adds them when the final response head is written, to every
// response that passes its phase: the upstream's, and the errors the
// gateway makes behind it (502, 503, 504). Deprecation and Sunset replace
// an upstream's own; Link values are appended after any the upstream sent.
// Informational responses (1xx, including 101 Switching Protocols) pass
// untouched.
package deprecation

import (
	"bufio"
	"net"
	"net/http"
	"strconv"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// Name is the plugin's config key.
const Name = "deprecation"

// Registration declares the deprecation pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseResponseTransform,
		Spec:  func() pipeline.Spec { return &Spec{} },
		Build: build,
	}
}

// headers are the precomputed values. Each slice has len == cap, so a
// later append by anyone copies it instead of writing into it.
type headers struct {
	deprecation []string
	sunset      []string // nil when not configured
	links       []string // nil when not configured
}

func compile(s *Spec) (*headers, error) {
	since, err := parseTime(s.Since)
	if err != nil {
		return nil, err
	}
	h := &headers{deprecation: []string{"@" + strconv.FormatInt(since.Unix(), 10)}}
	if s.Sunset != "" {
		t, err := parseTime(s.Sunset)
		if err != nil {
			return nil, err
		}
		h.sunset = []string{t.UTC().Format(http.TimeFormat)}
	}
	if s.Link != "" {
		h.links = append(h.links, "<"+s.Link+`>; rel="deprecation"; type="text/html"`)
	}
	if s.SunsetLink != "" {
		h.links = append(h.links, "<"+s.SunsetLink+`>; rel="sunset"`)
	}
	if h.links != nil {
		h.links = h.links[:len(h.links):len(h.links)]
	}
	return h, nil
}

// apply sets the headers on a response head.
func (h *headers) apply(dst http.Header) {
	dst["Deprecation"] = h.deprecation
	if h.sunset != nil {
		dst["Sunset"] = h.sunset
	}
	if h.links != nil {
		if old := dst["Link"]; len(old) > 0 {
			dst["Link"] = append(old[:len(old):len(old)], h.links...)
		} else {
			dst["Link"] = h.links
		}
	}
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	h, err := compile(s.(*Spec))
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&writer{w: w, h: h}, r)
		})
	}, nil
}

// writer adds the headers to the final response head. It unwraps for
// http.ResponseController and passes Flush and Hijack through, so
// streaming and protocol upgrades work through it.
type writer struct {
	w    http.ResponseWriter
	h    *headers
	done bool
}

// Header returns the underlying header map.
func (w *writer) Header() http.Header { return w.w.Header() }

// WriteHeader adds the headers to a final (non-1xx) status.
func (w *writer) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		w.h.apply(w.w.Header())
	}
	w.w.WriteHeader(code)
}

// Write writes the body, adding the headers first if no status was set.
func (w *writer) Write(b []byte) (int, error) {
	if !w.done {
		w.done = true
		w.h.apply(w.w.Header())
	}
	return w.w.Write(b)
}

// Flush sends what is buffered (the head with a 200 if none was written).
func (w *writer) Flush() {
	if !w.done {
		w.done = true
		w.h.apply(w.w.Header())
	}
	_ = http.NewResponseController(w.w).Flush()
}

// Hijack hands the connection to a protocol upgrade.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.w).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.w }

var (
	_ http.Flusher  = (*writer)(nil)
	_ http.Hijacker = (*writer)(nil)
)

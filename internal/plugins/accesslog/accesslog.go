// Package accesslog implements the access_log plugin: one JSON line per
// request, written to a shared, buffered output (see observe.Sinks) after
// the rest of the chain has answered.
//
// A line holds, in this order:
//
//	time         request start, RFC 3339 UTC with milliseconds
//	request_id   from the request_id plugin ("" when it is off)
//	client_ip    the resolved client address
//	method, host, path, query, proto
//	route, service, upstream   ("" when none)
//	status       the status sent to the client (200 when the handler wrote none)
//	bytes_in     request body bytes read
//	bytes_out    response body bytes written
//	duration_ms  total time, milliseconds with 3 decimals
//	upstream_ms  time spent upstream; omitted when no upstream call was made
//	user_agent
//	error        the upstream error text; omitted when there was none
//
// Lines never carry header values other than Host and User-Agent. In the
// query string, the value of every parameter whose (percent-decoded,
// lowercased) name is or contains one of
//
//	key token secret password passwd signature sig auth credential session
//
// is replaced by "[redacted]": ?api_key=abc&page=2 is logged as
// api_key=[redacted]&page=2. Both '&' and ';' separate parameters, as some
// upstreams accept either. The match is deliberately broad (it also
// redacts "author" or "monkey"): a missing value in a log costs less than a
// leaked credential.
//
// The line is built by hand into a pooled buffer; it costs a few hundred
// nanoseconds and no allocation.
package accesslog

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// Registration declares the access_log pipeline. It is global-capable: it
// also logs requests that match no route.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:   "access_log",
		Phase:  pipeline.PhaseObserve,
		Global: true,
		Spec:   func() pipeline.Spec { return &Spec{Output: "stdout"} },
		Build:  build,
	}
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec, ok := s.(*Spec)
	if !ok {
		return nil, fmt.Errorf("access_log: unexpected spec type %T", s)
	}
	if env == nil || env.Sinks == nil {
		return nil, errors.New("access_log: no log sinks configured")
	}
	sink, err := env.Sinks.Sink(spec.Output)
	if err != nil {
		return nil, fmt.Errorf("access_log output %s: %w", spec.Output, err)
	}
	return func(next http.Handler) http.Handler {
		return &handler{next: next, sink: sink}
	}, nil
}

// handler logs one line per request after next returns.
type handler struct {
	next http.Handler
	sink pipeline.Sink
}

// maxPooled is the largest line buffer returned to the pool, so one huge
// line does not pin memory.
const maxPooled = 16 << 10

var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// abortedText is logged as the error when the handler panicked (for
// example the proxy aborting a response with http.ErrAbortHandler) and
// nothing recorded why.
const abortedText = "request aborted"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil {
		// Only the gateway's edge creates the Exchange, and it always
		// does; without one there is no status to log.
		h.next.ServeHTTP(w, r)
		return
	}
	done := false
	// The deferred write also runs while a panic unwinds; the panic is not
	// recovered here, so it continues to the edge after the line is written.
	defer func() { h.write(r, ex, done) }()
	h.next.ServeHTTP(w, r)
	done = true
}

func (h *handler) write(r *http.Request, ex *pipeline.Exchange, completed bool) {
	status := ex.Status
	errText := ""
	if ex.Err != nil {
		errText = ex.Err.Error()
	}
	if !completed {
		if status == 0 {
			status = http.StatusInternalServerError // what the edge answers
		}
		if errText == "" {
			errText = abortedText
		}
	} else if status == 0 {
		status = http.StatusOK
	}
	start := ex.Start
	if start.IsZero() {
		start = time.Now()
	}
	bp := linePool.Get().(*[]byte)
	b := appendLine((*bp)[:0], r, ex, start, time.Since(start), status, errText)
	// A failed write is reported by the sink's periodic flush; the request
	// itself has been answered and must not be affected.
	_, _ = h.sink.Write(b)
	if cap(b) <= maxPooled {
		*bp = b
		linePool.Put(bp)
	}
}

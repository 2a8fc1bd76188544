// Package edge is what every request passes through after its listener
// parsed it and before it is routed, in the gateway and in the plugin test
// harness alike:
//
//   - what a client may not send is removed before any plugin runs
//     (Headers): copies of the identity headers (X-Consumer-ID, X-User-ID,
//     every claims_to_headers name), so no client can forge them;
//     forwarding and override headers (ProxyHeaders) unless the peer is a
//     trusted proxy; headers the client's Connection header lists; and
//     underscore twins of those names (X_Consumer_ID);
//   - the request's pipeline.Exchange is created in one allocation with
//     the edge's own state: the real client address (the peer, or the
//     first untrusted address in X-Forwarded-For from a trusted proxy),
//     the start time, a recorder that keeps the status and bytes written,
//     and a counter of the request body's bytes;
//   - the request is counted in flight, and when it ends its status and
//     durations go to the series of the route it matched (Routed), or to
//     the edge's series for unmatched requests;
//   - a panic below the edge is logged with its stack and answered with a
//     500 problem (or the connection is aborted when the answer has
//     started).
//
// What the request then meets is the Next handler: the snapshot's router
// and the matched route's chain in the gateway, one fixed chain in the
// plugin test harness.
package edge

import (
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Observer counts finished requests (telemetry.RouteMetrics).
type Observer interface {
	// Observe records one request: its status, its duration and the time
	// spent upstream (0 when no upstream was called).
	Observe(status int, total, upstream time.Duration)
}

// Handler serves a request the edge prepared: w records what is written,
// r carries st's Exchange in its context.
type Handler interface {
	ServeEdge(st *State, w http.ResponseWriter, r *http.Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(st *State, w http.ResponseWriter, r *http.Request)

// ServeEdge calls f.
func (f HandlerFunc) ServeEdge(st *State, w http.ResponseWriter, r *http.Request) { f(st, w, r) }

// Edge is the front of the gateway. It is immutable once built (a
// snapshot builds its own) and serves any number of requests at once.
type Edge struct {
	// Trusted are the peers whose X-Forwarded-For is believed.
	Trusted []netip.Prefix
	// Body bounds how slowly a client may send a request body.
	Body BodyLimits
	// Headers says which client headers are removed (nil: none).
	Headers *Headers
	// Unmatched counts requests that Next did not route (nil: uncounted).
	Unmatched Observer
	// InFlight, when set, is told +1 when a request starts and -1 when it
	// ends.
	InFlight func(delta int)
	// Logger receives panics (nil: discarded).
	Logger *slog.Logger
	// Next routes and serves the request.
	Next Handler
}

// ServeHTTP runs one request through the edge and on to Next, as from
// the first listener.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.ServeOn(0, w, r) }

// ServeOn runs one request that arrived on the listener-th public
// listener through the edge and on to Next.
func (e *Edge) ServeOn(listener int, w http.ResponseWriter, r *http.Request) {
	st := newState(w, r, e.Trusted, e.Body)
	st.listener = listener
	e.Headers.clean(r.Header, st.ex.PeerTrusted)
	if st.body.rc != nil {
		r.Body = &st.body
	}
	st.observer = e.Unmatched
	r = r.WithContext(pipeline.NewContext(r.Context(), &st.ex))
	if e.InFlight != nil {
		e.InFlight(1)
	}
	defer e.finish(st, r)
	e.Next.ServeEdge(st, &st.rec, r)
}

// finish counts the request and turns a panic into a 500 (or an aborted
// connection when the answer has started).
func (e *Edge) finish(st *State, r *http.Request) {
	if e.InFlight != nil {
		e.InFlight(-1)
	}
	if st.observer != nil {
		st.observer.Observe(st.ex.Status, time.Since(st.ex.Start), st.ex.UpstreamDuration)
	}
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	if e.Logger != nil {
		e.Logger.Error("panic serving request", "request_id", st.ex.RequestID,
			"route", st.ex.Route, "panic", v, "stack", string(debug.Stack()))
	}
	if st.rec.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	problem.Write(&st.rec, r, http.StatusInternalServerError, "", "the gateway failed to handle the request")
}

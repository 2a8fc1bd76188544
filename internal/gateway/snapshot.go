package gateway

import (
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Snapshot is one compiled config: the router, every route's plugin chain
// and proxy, and handles to the long-lived state (upstream targets, metrics)
// that it shares with other snapshots. It is immutable once Compile returns
// and serves any number of requests concurrently.
type Snapshot struct {
	cfg      *config.Config
	table    *router.Table[*route]
	trusted  []netip.Prefix
	services []*upstream.Service

	// Chains for requests that match no route: the global plugins that run
	// without a route around a problem response.
	badPath, notFound, notAllowed http.Handler
	unmatched                     *telemetry.RouteMetrics

	// identity lists the identity headers (X-Consumer-ID, X-User-ID, ...)
	// that plugins set; client-sent copies are removed from every request.
	identity []string

	healthPath, readyPath string
	ready                 func() bool
	metrics               *telemetry.Telemetry
	logger                *slog.Logger
	routes                []RouteInfo
}

// route is the runtime form of one config route.
type route struct {
	name, service string
	handler       http.Handler
	stripPrefix   bool
	rewrite       *regexp.Regexp
	replacement   string
	metrics       *telemetry.RouteMetrics
	cors          bool // the chain has the cors plugin: it answers preflights
}

// RouteInfo describes a compiled route for the admin API.
type RouteInfo struct {
	Name    string   `json:"name"`
	Service string   `json:"service"`
	Hosts   []string `json:"hosts,omitempty"`
	Methods []string `json:"methods,omitempty"`
	Paths   []string `json:"paths"`
	Plugins []string `json:"plugins"`
}

// Config returns the config the snapshot was compiled from.
func (s *Snapshot) Config() *config.Config { return s.cfg }

// Routes describes the compiled routes.
func (s *Snapshot) Routes() []RouteInfo { return s.routes }

// ServeHTTP serves one request with this snapshot.
func (s *Snapshot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == s.healthPath {
		writeStatusJSON(w, http.StatusOK, `{"status":"healthy"}`)
		return
	}
	if p == s.readyPath {
		if s.ready() {
			writeStatusJSON(w, http.StatusOK, `{"status":"ready"}`)
		} else {
			w.Header().Set("Retry-After", "1")
			writeStatusJSON(w, http.StatusServiceUnavailable, `{"status":"not ready"}`)
		}
		return
	}

	for _, h := range s.identity {
		delete(r.Header, h)
	}
	st := newState(w, r, s.trusted)
	if st.body.rc != nil {
		r.Body = &st.body
	}
	r = r.WithContext(pipeline.NewContext(r.Context(), &st.ex))
	s.metrics.InFlightAdd(1)
	rm := s.unmatched
	defer func() {
		s.metrics.InFlightAdd(-1)
		rm.Observe(st.ex.Status, time.Since(st.ex.Start), st.ex.UpstreamDuration)
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.Error("panic serving request", "request_id", st.ex.RequestID,
				"route", st.ex.Route, "panic", v, "stack", string(debug.Stack()))
			if !st.rec.wroteHeader {
				problem.Write(&st.rec, r, http.StatusInternalServerError, "", "the gateway failed to handle the request")
			} else {
				panic(http.ErrAbortHandler)
			}
		}
	}()

	norm, err := router.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		s.badPath.ServeHTTP(&st.rec, r)
		return
	}
	m, res := s.table.Lookup(r, norm)
	switch res {
	case router.NotFound:
		s.notFound.ServeHTTP(&st.rec, r)
		return
	case router.MethodNotAllowed:
		if pm, ok := s.preflight(r, norm); ok {
			m = pm
			break
		}
		w.Header().Set("Allow", m.Allow)
		s.notAllowed.ServeHTTP(&st.rec, r)
		return
	}
	rt := m.Value
	rm = rt.metrics
	st.ex.Route, st.ex.Service = rt.name, rt.service
	st.ex.Path = norm
	st.ex.UpstreamPath = upstreamPath(rt, m, norm)
	if len(m.Captures) > 0 {
		st.ex.Params = make([]pipeline.Param, len(m.Captures))
		for i, c := range m.Captures {
			st.ex.Params[i] = pipeline.Param{Name: c.Name, Value: c.Value}
		}
	}
	rt.handler.ServeHTTP(&st.rec, r)
}

// preflight finds the route a CORS preflight is about when the route does
// not list OPTIONS among its methods: the route the actual request
// (Access-Control-Request-Method) would take, if its chain has the cors
// plugin, which answers the preflight without forwarding it.
func (s *Snapshot) preflight(r *http.Request, norm string) (router.Match[*route], bool) {
	method := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || method == "" || r.Header.Get("Origin") == "" {
		return router.Match[*route]{}, false
	}
	actual := *r
	actual.Method = method
	m, res := s.table.Lookup(&actual, norm)
	if res != router.Matched || !m.Value.cors {
		return router.Match[*route]{}, false
	}
	return m, true
}

// upstreamPath applies strip_prefix or path_rewrite to the normalized path.
func upstreamPath(rt *route, m router.Match[*route], norm string) string {
	switch {
	case rt.stripPrefix && m.Kind == router.Prefix:
		rest := norm[len(m.Prefix):]
		if rest == "" || rest[0] != '/' {
			rest = "/" + rest
		}
		return rest
	case rt.rewrite != nil:
		out := rt.rewrite.ReplaceAllString(norm, rt.replacement)
		if out == "" || out[0] != '/' {
			out = "/" + out
		}
		return out
	}
	return norm
}

func writeStatusJSON(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// terminal answers unmatched requests with a fixed problem.
func terminal(status int, detail string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, status, "", detail)
	})
}

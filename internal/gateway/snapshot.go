package gateway

import (
	"net/http"
	"regexp"

	"github.com/portico-gateway/portico/internal/admin"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/edge"
	"github.com/portico-gateway/portico/internal/pipeline"
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
	table    *router.Table[*route]   // every route
	tables   []*router.Table[*route] // by listener index: the routes each takes
	edge     edge.Edge
	services []*upstream.Service

	// Chains for requests that match no route: the global plugins that run
	// without a route around a problem response.
	badPath, notFound, notAllowed, badCredential http.Handler

	healthPath, readyPath string
	ready                 func() bool
	routes                []RouteInfo
	// admin is who may call the admin API while this snapshot serves.
	admin *admin.Access
}

// route is the runtime form of one config route.
type route struct {
	name, service string
	handler       http.Handler      // the chain around terminal
	terminal      pipeline.Terminal // what ends the chain
	stripPrefix   bool
	rewrite       *regexp.Regexp
	replacement   string
	metrics       *telemetry.RouteMetrics
	preflight     bool // a plugin of the chain answers CORS preflights
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

// ServeHTTP serves one request with this snapshot, as the first listener.
func (s *Snapshot) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.ServeOn(0, w, r) }

// ServeOn serves one request that arrived on the listener-th public
// listener. The probes answer any method but CONNECT and TRACE, which are
// routed like every request: a 200 to CONNECT would tell the client a
// tunnel is open.
func (s *Snapshot) ServeOn(listener int, w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if r.Method == http.MethodConnect || r.Method == http.MethodTrace {
		p = ""
	}
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

	s.edge.ServeOn(listener, w, r)
}

// ServeEdge routes a request the edge prepared and runs the matched
// route's chain (or the chain of unmatched requests around a problem).
func (s *Snapshot) ServeEdge(st *edge.State, w http.ResponseWriter, r *http.Request) {
	raw, err := router.RequestPath(r.URL)
	var norm string
	if err == nil {
		norm, err = router.NormalizePath(raw)
	}
	if err != nil {
		s.badPath.ServeHTTP(w, r)
		return
	}
	if len(r.Header["Authorization"]) > 1 {
		// Two credentials: whichever a plugin checks, the other would go
		// upstream unverified beside it.
		s.badCredential.ServeHTTP(w, r)
		return
	}
	table := s.table
	if i := st.Listener(); i < len(s.tables) {
		table = s.tables[i]
	}
	m, res := table.Lookup(r, norm)
	switch res {
	case router.NotFound:
		s.notFound.ServeHTTP(w, r)
		return
	case router.MethodNotAllowed:
		if pm, ok := s.preflight(table, r, norm); ok {
			m = pm
			break
		}
		w.Header().Set("Allow", m.Allow)
		s.notAllowed.ServeHTTP(w, r)
		return
	}
	rt := m.Value
	var params []pipeline.Param
	if len(m.Captures) > 0 {
		params = make([]pipeline.Param, len(m.Captures))
		for i, c := range m.Captures {
			params[i] = pipeline.Param{Name: c.Name, Value: c.Value}
		}
	}
	st.Routed(rt.name, rt.service, norm, upstreamPath(rt, m, norm), params, rt.metrics)
	rt.handler.ServeHTTP(w, r)
}

// preflight finds the route a CORS preflight is about when the route does
// not list OPTIONS among its methods: the route the actual request
// (Access-Control-Request-Method) would take, if its chain has the cors
// plugin, which answers the preflight without forwarding it.
func (s *Snapshot) preflight(table *router.Table[*route], r *http.Request, norm string) (router.Match[*route], bool) {
	method := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || method == "" || r.Header.Get("Origin") == "" {
		return router.Match[*route]{}, false
	}
	actual := *r
	actual.Method = method
	m, res := table.Lookup(&actual, norm)
	if res != router.Matched || !m.Value.preflight {
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

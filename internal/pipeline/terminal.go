package pipeline

import "net/http"

// Terminal ends a route's chain: it answers the request, by sending it on
// (the proxy to one service) or by itself (the problem answers around
// unmatched requests). The compiler chooses a route's terminal by the
// route's kind; the plugins of the chain wrap it and do not know which it
// is.
type Terminal interface {
	http.Handler
	// Describe says what ServeHTTP would do with r, without doing it. ex
	// holds what the edge and the chain decided (the upstream path, the
	// client address, an upstream Host set by a transform).
	Describe(r *http.Request, ex *Exchange) Plan
}

// Plan is a terminal's account of what it would do with a request.
type Plan struct {
	// Kind names the terminal: "proxy" or "respond".
	Kind string `json:"kind"`
	// Status and Detail are the answer of a terminal that answers itself.
	Status int    `json:"status,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Service is where a proxy sends the request, LoadBalancer how it
	// picks among Targets.
	Service      string       `json:"service,omitempty"`
	LoadBalancer string       `json:"load_balancer,omitempty"`
	Targets      []PlanTarget `json:"targets,omitempty"`
	// Upstream is the request the service would receive (from the first
	// available target's point of view).
	Upstream *UpstreamRequest `json:"upstream,omitempty"`
}

// PlanTarget is one candidate target of a proxy's plan.
type PlanTarget struct {
	URL       string `json:"url"`
	Weight    int    `json:"weight"`
	Available bool   `json:"available"`
}

// UpstreamRequest is a request as an upstream would receive it.
type UpstreamRequest struct {
	// Protocol is the protocol spoken to the upstream ("HTTP/1.1").
	Protocol string `json:"protocol"`
	Method   string `json:"method"`
	// Target is the request target: the escaped path and the query.
	Target string      `json:"target"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
}

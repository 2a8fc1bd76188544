// Package admin serves Portico's admin API on the admin listener (by
// default 127.0.0.1:9901, never the public one):
//
//	GET  /metrics   Prometheus metrics
//	GET  /health    200 {"status":"healthy"} while the process serves
//	GET  /ready     200 {"status":"ready"}, or 503 {"status":"not ready"}
//	                with Retry-After: 1 (before the first config is live,
//	                and while draining)
//	POST /reload    re-read the config file: 200 {"status":"reloaded"}, or
//	                500 problem JSON listing the config errors; the old
//	                config keeps serving
//	GET  /routes    the compiled routes as JSON
//	GET  /upstreams every service's targets: health, ejection, breaker
//	                state and in-flight requests
//	GET  /version   {"version":"..."}
//
// Plugins add their own endpoints (Options.Endpoints), such as the cache
// plugin's POST /cache/purge. GET endpoints also answer HEAD. A known path with another method gets 405
// with Allow; any other path gets 404. Errors are problem JSON. Nothing
// here echoes a secret: route listings and config errors are built from
// types that print secrets as "[redacted]".
package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/problem"
)

// Options wires the admin API to the running gateway. Every field may be
// left zero; the matching endpoint then answers 404 (Ready: always ready).
type Options struct {
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// Ready reports whether the gateway serves traffic (GET /ready).
	Ready func() bool
	// Reload re-reads and applies the config (POST /reload). Its error
	// lists the config problems and is shown to the operator.
	Reload func() error
	// Routes returns the JSON-encodable route table (GET /routes).
	Routes func() any
	// Upstreams returns the JSON-encodable state of every service's
	// targets (GET /upstreams).
	Upstreams func() any
	// Endpoints are served beside the built-in ones (the plugins').
	Endpoints []Endpoint
	// Version is the build version (GET /version).
	Version string
}

// Endpoint is an admin endpoint served beside the built-in ones.
type Endpoint struct {
	// Method and Path select it.
	Method, Path string
	// Serve answers one request with a value to send as JSON (200), or an
	// error: one with an HTTPStatus() int method is the client's mistake
	// and is answered with that status and the error's text; any other is
	// answered 502 with its text, which says what the operator must know.
	Serve func(r *http.Request) (any, error)
}

// endpoint is one admin path: the method it accepts and its handler.
type endpoint struct {
	method string // GET endpoints also accept HEAD
	allow  string // the Allow header for 405
	h      http.HandlerFunc
}

// New returns the admin API handler.
func New(o Options) http.Handler {
	a := &api{o: o}
	get := func(h http.HandlerFunc) endpoint {
		return endpoint{method: http.MethodGet, allow: "GET, HEAD", h: h}
	}
	a.endpoints = map[string]endpoint{
		"/metrics": get(a.metrics),
		"/health":  get(a.health),
		"/ready":   get(a.ready),
		"/reload":  {method: http.MethodPost, allow: http.MethodPost, h: a.reload},
		"/routes":  get(a.routes),
		"/upstreams": get(func(w http.ResponseWriter, r *http.Request) {
			a.table(w, r, a.o.Upstreams, "the upstream table is not available")
		}),
		"/version": get(a.version),
	}
	for _, e := range o.Endpoints {
		ep := endpoint{method: e.Method, allow: e.Method, h: serveExtra(e.Serve)}
		if e.Method == http.MethodGet {
			ep.allow = "GET, HEAD"
		}
		a.endpoints[e.Path] = ep
	}
	a.paths = slices.Sorted(maps.Keys(a.endpoints))
	return a
}

// serveExtra adapts an Endpoint's Serve to the API's answers.
func serveExtra(serve func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := serve(r)
		if err == nil {
			writeJSON(w, r, http.StatusOK, v)
			return
		}
		var client interface{ HTTPStatus() int }
		if errors.As(err, &client) {
			problem.Write(w, r, client.HTTPStatus(), "", err.Error())
			return
		}
		// The endpoint's error says what did not complete (a store that
		// could not be reached); it never carries a secret.
		problem.Write(w, r, http.StatusBadGateway, "", err.Error())
	}
}

type api struct {
	o         Options
	endpoints map[string]endpoint
	paths     []string // sorted, for the 404 answer
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, ok := a.endpoints[r.URL.Path]
	if !ok {
		problem.Write(w, r, http.StatusNotFound, "", "no admin endpoint at this path; see "+strings.Join(a.paths, ", "))
		return
	}
	if r.Method != ep.method && (ep.method != http.MethodGet || r.Method != http.MethodHead) {
		w.Header().Set("Allow", ep.allow)
		problem.Write(w, r, http.StatusMethodNotAllowed, "", "use "+ep.allow)
		return
	}
	ep.h(w, r)
}

func (a *api) metrics(w http.ResponseWriter, r *http.Request) {
	if a.o.Metrics == nil {
		problem.Write(w, r, http.StatusNotFound, "", "metrics are not enabled")
		return
	}
	a.o.Metrics.ServeHTTP(w, r)
}

func (a *api) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, status{"healthy"})
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if a.o.Ready != nil && !a.o.Ready() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, r, http.StatusServiceUnavailable, status{"not ready"})
		return
	}
	writeJSON(w, r, http.StatusOK, status{"ready"})
}

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	if a.o.Reload == nil {
		problem.Write(w, r, http.StatusNotFound, "", "reload is not available")
		return
	}
	if err := a.o.Reload(); err != nil {
		// The error lists the operator's own config problems (file, line,
		// key path, message); config errors never carry secret values.
		problem.Write(w, r, http.StatusInternalServerError, "Reload Failed",
			"the new config was rejected and the previous one keeps serving:\n"+err.Error())
		return
	}
	writeJSON(w, r, http.StatusOK, status{"reloaded"})
}

func (a *api) routes(w http.ResponseWriter, r *http.Request) {
	a.table(w, r, a.o.Routes, "the route table is not available")
}

// table answers with the JSON of what f returns.
func (a *api) table(w http.ResponseWriter, r *http.Request, f func() any, missing string) {
	if f == nil {
		problem.Write(w, r, http.StatusNotFound, "", missing)
		return
	}
	v := f()
	if v == nil {
		problem.Write(w, r, http.StatusNotFound, "", "no config is loaded")
		return
	}
	writeJSON(w, r, http.StatusOK, v)
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, struct {
		Version string `json:"version"`
	}{a.o.Version})
}

type status struct {
	Status string `json:"status"`
}

// writeJSON answers with v as indented JSON. An encoding failure is a bug
// in the route table's types; the client gets a 500 without its text.
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "", "the response could not be encoded")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

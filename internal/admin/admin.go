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
//
// Who may call what is the Access of the running config, read once per
// request. A request passes these steps in order; the first that refuses
// answers:
//
//  1. A public path (admin.public_paths, GET endpoints only) is served
//     without a token; so is every path when no tokens are set (open).
//  2. An address blocked for failing to authenticate too often gets 429
//     with Retry-After (see FailureLimit).
//  3. No bearer token: 401; a token that matches none: 401. Both carry
//     WWW-Authenticate: Bearer realm="portico-admin" and count as failures.
//  4. Unknown path: 404; wrong method: 405.
//  5. On an endpoint that changes the gateway (POST /reload, a plugin
//     endpoint marked Write): a read token gets 403; an Origin header that
//     is not an allowed origin gets 403 (CSRF); a body that is not declared
//     application/json gets 415. Steps 5's origin and body rules apply to
//     an open admin API too.
//
// Refusals are logged at warn level with the remote address, method, path
// and reason, never the token; every call of a write endpoint is logged at
// info level with the token's name.
package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/problem"
)

// Realm is the realm of the admin API's WWW-Authenticate challenge.
const Realm = "portico-admin"

// Options wires the admin API to the running gateway. Every field may be
// left zero; the matching endpoint then answers 404 (Ready: always ready;
// Access: open, no origin allowed; Logger: nothing logged).
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
	// Access returns the access rules of the config serving now; it is
	// called once per request, so a reload applies to the next request.
	Access func() *Access
	// Logger receives refused requests (warn) and calls of write
	// endpoints (info).
	Logger *slog.Logger
}

// Endpoint is an admin endpoint served beside the built-in ones.
type Endpoint struct {
	// Method and Path select it.
	Method, Path string
	// Write reports whether it changes the gateway: it then needs the
	// write role, and the origin and body rules apply.
	Write bool
	// Serve answers one request with a value to send as JSON (200), or an
	// error: one with an HTTPStatus() int method is the client's mistake
	// and is answered with that status and the error's text; any other is
	// answered 502 with its text, which says what the operator must know.
	Serve func(r *http.Request) (any, error)
}

// builtin lists the built-in endpoints (New gives each its handler).
var builtin = []Endpoint{
	{Method: http.MethodGet, Path: "/metrics"},
	{Method: http.MethodGet, Path: "/health"},
	{Method: http.MethodGet, Path: "/ready"},
	{Method: http.MethodPost, Path: "/reload", Write: true},
	{Method: http.MethodGet, Path: "/routes"},
	{Method: http.MethodGet, Path: "/upstreams"},
	{Method: http.MethodGet, Path: "/version"},
}

// endpoint is one admin path: the method it accepts and its handler.
type endpoint struct {
	method string // GET endpoints also accept HEAD
	allow  string // the Allow header for 405
	write  bool
	h      http.HandlerFunc
}

// New returns the admin API handler.
func New(o Options) http.Handler {
	a := &api{o: o, failures: newFailures(time.Now, maxTracked), log: o.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.o.Access == nil {
		a.o.Access = func() *Access { return nil }
	}
	handlers := map[string]http.HandlerFunc{
		"/metrics": a.metrics,
		"/health":  a.health,
		"/ready":   a.ready,
		"/reload":  a.reload,
		"/routes":  a.routes,
		"/upstreams": func(w http.ResponseWriter, r *http.Request) {
			a.table(w, r, a.o.Upstreams, "the upstream table is not available")
		},
		"/version": a.version,
	}
	a.endpoints = make(map[string]endpoint, len(builtin)+len(o.Endpoints))
	for _, e := range builtin {
		a.endpoints[e.Path] = newEndpoint(e, handlers[e.Path])
	}
	for _, e := range o.Endpoints {
		a.endpoints[e.Path] = newEndpoint(e, serveExtra(e.Serve))
	}
	a.paths = slices.Sorted(maps.Keys(a.endpoints))
	return a
}

func newEndpoint(e Endpoint, h http.HandlerFunc) endpoint {
	ep := endpoint{method: e.Method, allow: e.Method, write: e.Write, h: h}
	if e.Method == http.MethodGet {
		ep.allow = "GET, HEAD"
	}
	return ep
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
	failures  *failures
	log       *slog.Logger
}

// The reasons a request is refused, as logged.
const (
	reasonMissing   = "missing token"
	reasonInvalid   = "invalid token"
	reasonRole      = "insufficient role"
	reasonOrigin    = "origin not allowed"
	reasonMediaType = "unsupported content type"
)

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	acc := a.o.Access()
	ep, known := a.endpoints[r.URL.Path]
	var caller *token
	if !acc.Open() && !(known && !ep.write && acc.isPublic(r.URL.Path)) {
		var ok bool
		if caller, ok = a.authenticate(w, r, acc); !ok {
			return
		}
	}
	if !known {
		problem.Write(w, r, http.StatusNotFound, "", "no admin endpoint at this path; see "+strings.Join(a.paths, ", "))
		return
	}
	if r.Method != ep.method && (ep.method != http.MethodGet || r.Method != http.MethodHead) {
		w.Header().Set("Allow", ep.allow)
		problem.Write(w, r, http.StatusMethodNotAllowed, "", "use "+ep.allow)
		return
	}
	if ep.write && !a.admitWrite(w, r, acc, caller) {
		return
	}
	ep.h(w, r)
}

// authenticate finds the caller's token, or answers 429 (a blocked
// address) or 401 and reports false.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request, acc *Access) (*token, bool) {
	key := clientKey(r.RemoteAddr)
	if left, blocked := a.failures.blocked(key); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
		problem.Write(w, r, http.StatusTooManyRequests, "",
			"too many failed authentication attempts from this address; try again later")
		return nil, false
	}
	tok, present := bearer(r.Header)
	reason, challenge := reasonMissing, `Bearer realm="`+Realm+`"`
	if present {
		reason, challenge = reasonInvalid, challenge+`, error="invalid_token"`
		if tok != "" {
			if i := acc.lookup(tok); i >= 0 {
				return &acc.tokens[i], true
			}
		}
	}
	a.refused(r, reason, "")
	if a.failures.fail(key) {
		a.log.Warn("admin client blocked after repeated authentication failures",
			"remote", r.RemoteAddr, "failures", a.failures.limit, "window", a.failures.window.String(),
			"blocked_for", a.failures.block.String())
	}
	w.Header().Set("WWW-Authenticate", challenge)
	detail := "this admin endpoint needs a token: send Authorization: Bearer <token>"
	if present {
		detail = "the token is not valid"
	}
	problem.Write(w, r, http.StatusUnauthorized, "", detail)
	return nil, false
}

// admitWrite applies the rules of endpoints that change the gateway: the
// write role, the allowed origins and a JSON or empty body. It answers a
// refusal itself and reports whether the request may go on.
func (a *api) admitWrite(w http.ResponseWriter, r *http.Request, acc *Access, caller *token) bool {
	name := ""
	if caller != nil {
		name = caller.name
		if !caller.write {
			a.refused(r, reasonRole, name)
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="insufficient_scope"`)
			problem.Write(w, r, http.StatusForbidden, "", "this endpoint changes the gateway and needs a token with the write role")
			return false
		}
	}
	for _, o := range r.Header.Values("Origin") {
		if !acc.originAllowed(o) {
			a.refused(r, reasonOrigin, name)
			problem.Write(w, r, http.StatusForbidden, "",
				"write endpoints refuse requests from this origin (cross-site request forgery); an operator may list it in admin.allowed_origins")
			return false
		}
	}
	if !jsonOrNoBody(r) {
		a.refused(r, reasonMediaType, name)
		w.Header().Set("Accept-Post", "application/json")
		problem.Write(w, r, http.StatusUnsupportedMediaType, "",
			"send the body as Content-Type: application/json, or send no body and no Content-Type")
		return false
	}
	a.logRequest(r, slog.LevelInfo, "admin write", "", name)
	return true
}

// refused logs a refused request.
func (a *api) refused(r *http.Request, reason, tokenName string) {
	a.logRequest(r, slog.LevelWarn, "admin request refused", reason, tokenName)
}

// logRequest logs one admin request: the remote address, method, path,
// the reason of a refusal and the name of the caller's token, never a
// credential.
func (a *api) logRequest(r *http.Request, level slog.Level, msg, reason, tokenName string) {
	attrs := []slog.Attr{slog.String("remote", r.RemoteAddr), slog.String("method", r.Method),
		slog.String("path", r.URL.Path)}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if tokenName != "" {
		attrs = append(attrs, slog.String("token", tokenName))
	}
	a.log.LogAttrs(r.Context(), level, msg, attrs...)
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

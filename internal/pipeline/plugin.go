// Package pipeline defines how a Portico plugin is declared, configured,
// validated, compiled and placed in the request chain.
//
// A plugin is a Registration: a YAML name, a fixed Phase, a constructor for
// its typed Spec (the settings, with defaults) and a Build function that
// turns a validated Spec into a Middleware. Build runs at config compile
// time, once per route that uses the plugin: all parsing, regexp compilation
// and lookup tables happen there, never per request.
//
// The order of plugins is code, not data: Chain sorts a route's plugins by
// Phase and folds them once, so no config can put rate limiting before
// authentication. Plugins may be set globally, on a service, or on a route;
// for the same name the most specific scope wins (Resolve). A consumer may
// set rate_limit for itself (ScopeConsumer); the plugin applies it to that
// consumer's requests on every route.
package pipeline

import (
	"log/slog"
	"net/http"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Middleware wraps the next handler of the chain. It is plain net/http so
// plugins compose with the standard library.
type Middleware func(next http.Handler) http.Handler

// Spec is a plugin's typed configuration. Validate is pure (no I/O) and
// returns every problem it finds, each built with p.Errorf.
type Spec interface {
	Validate(p config.Path) error
}

// Phase is a plugin's fixed slot in the chain. Lower phases wrap higher
// ones: a request passes the phases in ascending order on its way to the
// upstream, and the response passes them in descending order on its way
// back.
type Phase int

// The phases, outermost first. The gaps leave room for later plugins.
const (
	PhaseRequestID         Phase = 10  // request id (the client IP is resolved before any phase)
	PhaseObserve           Phase = 20  // access log: sees the final status of everything inside
	PhaseIPRestriction     Phase = 30  // allow/deny by client address
	PhaseCORS              Phase = 40  // answers preflight before auth
	PhaseCompression       Phase = 50  // encodes whatever the inner phases answer
	PhaseLimits            Phase = 60  // request size limits
	PhaseRateLimitEarly    Phase = 65  // ip_rate_limit: per-address limits before credentials are checked
	PhaseAuthenticate      Phase = 70  // jwt, key_auth, basic_auth, introspection: record, never refuse
	PhaseAuthGate          Phase = 75  // auth: admits (any/all, anonymous) or refuses, sets identity headers
	PhaseAuthorize         Phase = 80  // acl
	PhaseRateLimit         Phase = 90  // rate and concurrency limits
	PhaseRequestTransform  Phase = 100 // header/query/body changes toward the upstream
	PhaseResponseTransform Phase = 110 // header/body changes toward the client
	PhaseCache             Phase = 120 // answers from cache or stores on the way back
)

// Scope says where a plugin instance was configured.
type Scope int

// Scopes, least specific first.
const (
	ScopeGlobal Scope = iota
	ScopeService
	ScopeRoute
	// ScopeConsumer is a plugin set on a consumer (consumers[i].plugins):
	// it applies to that consumer's requests on every route.
	ScopeConsumer
)

func (s Scope) String() string {
	switch s {
	case ScopeService:
		return "service"
	case ScopeRoute:
		return "route"
	case ScopeConsumer:
		return "consumer"
	default:
		return "global"
	}
}

// Registration declares one plugin. The full set is listed explicitly in
// package plugins (all.go).
type Registration struct {
	// Name is the YAML key, e.g. "rate_limit".
	Name string
	// Phase is the plugin's fixed slot.
	Phase Phase
	// Spec returns a new Spec holding the defaults; YAML decodes over it.
	Spec func() Spec
	// Build compiles a validated Spec for one route (or for the global chain
	// of unmatched requests, where env.Route is "").
	Build func(s Spec, env *BuildEnv) (Middleware, error)
	// Global reports whether the plugin also runs for requests that match no
	// route (404, 405, 400). Only plugins that need no route may say so.
	Global bool
	// IdentityHeaders, when set, names the request headers the plugin sets
	// to tell the upstream who the caller is. The gateway removes
	// client-sent copies of every such header on every route, before any
	// plugin runs, so no client can forge them: the headers of every
	// configured instance, and those of the default settings even where
	// the plugin does not run.
	IdentityHeaders func(s Spec) []string
	// Implicit says when the gateway adds the plugin, with its default
	// settings, to a chain that does not configure it.
	Implicit Implicit
	// OnConsumer reports whether the plugin may be set on a consumer
	// (consumers[i].plugins). Its Build then receives those instances in
	// BuildEnv.ConsumerPlugins and applies each to its consumer's requests.
	OnConsumer bool
	// Preflight reports whether the plugin answers CORS preflight requests:
	// an OPTIONS request with Origin and Access-Control-Request-Method then
	// reaches the chain of the route the actual request would take, even
	// when that route does not list OPTIONS among its methods.
	Preflight bool
	// Admin lists the admin API endpoints the plugin serves.
	Admin []AdminEndpoint
}

// Implicit is when the gateway adds a plugin nobody configured.
type Implicit int

// The rules for adding a plugin implicitly.
const (
	// NotImplicit: only where configured.
	NotImplicit Implicit = iota
	// Always: in every chain, as if set in the global plugins (so also
	// around unmatched requests when the plugin is Global).
	Always
	// WithAuthentication: in every chain that has a plugin of
	// PhaseAuthenticate (the auth gate that admits or refuses).
	WithAuthentication
	// WhenConsumersSetIt: in every chain, at the least specific level,
	// when some consumer sets the plugin (so that consumer's settings
	// apply on routes that do not configure the plugin themselves).
	WhenConsumersSetIt
)

// String says when the plugin is added, for route listings and explain.
func (i Implicit) String() string {
	switch i {
	case Always:
		return "every route"
	case WithAuthentication:
		return "routes that authenticate"
	case WhenConsumersSetIt:
		return "every route, because consumers set it"
	default:
		return "only where configured"
	}
}

// AdminEndpoint is one admin API endpoint that a plugin serves on the
// admin listener (POST /cache/purge, say).
type AdminEndpoint struct {
	// Method and Path select the endpoint ("POST", "/cache/purge").
	Method, Path string
	// Write reports whether the endpoint changes state (needs the write
	// role when the admin API has roles).
	Write bool
	// Summary is one line for the admin API's listing.
	Summary string
	// Serve answers one request: the value to send as JSON, or an error.
	// An *AdminError is the client's mistake and is answered with its
	// status and detail; any other error is answered 502 with its text
	// (it says what the operator must know, never a secret).
	Serve func(r *http.Request, env AdminEnv) (any, error)
}

// AdminEnv is what an admin endpoint may use.
type AdminEnv struct {
	// Shared is the plugins' long-lived state.
	Shared *Shared
	// HasRoute reports whether the running config has a route of that name.
	HasRoute func(name string) bool
}

// AdminError is an admin request the endpoint refuses.
type AdminError struct {
	// Status is the HTTP status (400, 404, ...).
	Status int
	// Detail is written for the operator.
	Detail string
}

func (e *AdminError) Error() string { return e.Detail }

// HTTPStatus is the status the admin API answers with.
func (e *AdminError) HTTPStatus() int { return e.Status }

// BuildEnv is what Build may use: where the plugin instance sits, and the
// shared registries that outlive a single config snapshot. Plugins never
// reach for globals.
type BuildEnv struct {
	// Scope is where this plugin's settings were written.
	Scope Scope
	// Route and Service name what the chain serves ("" for the unmatched
	// chain and for services of the unmatched chain).
	Route   string
	Service string
	// Logger is the gateway's logger.
	Logger *slog.Logger
	// Sinks opens shared log outputs by name (see package telemetry).
	Sinks LogSinks
	// Listeners are the public listeners the route takes requests from
	// (its routes[].listeners, or every listener), so Build can refuse a
	// route that no listener serves the way the plugin needs; nil when not
	// known (the chain of unmatched requests).
	Listeners []config.Listener
	// Consumers are the config's known callers.
	Consumers *consumer.Registry
	// Shared holds state that outlives a snapshot (key sets, token caches).
	Shared *Shared
	// Store is the config's shared-state store (nil: keep state in memory).
	Store *config.Store
	// Tiers are the config's rate-limit tiers, by name.
	Tiers map[string]config.Tier
	// ConsumerPlugins are the instances of this plugin set on consumers,
	// by consumer name (only for plugins with OnConsumer); nil when no
	// consumer sets it.
	ConsumerPlugins map[string]Configured
	// ConsumerSettings are every plugin's instances set on consumers;
	// Chain hands each instance its own plugin's in ConsumerPlugins.
	ConsumerSettings ConsumerPlugins
	// Chain holds every instance of the chain being built, in phase order
	// (this one included), so Build can refuse settings that contradict
	// another plugin's. Read-only; set by Chain.
	Chain []Configured
	// Telemetry hands out the plugin's metric handles; resolve them in
	// Build, never per request. nil records nothing: every handle it
	// returns is a no-op.
	Telemetry *telemetry.Telemetry
}

// LogSinks hands out shared, reference-counted log outputs that survive
// config reloads and can be reopened for rotation.
type LogSinks interface {
	// Sink returns the output named by spec: "stdout", "stderr", or a file
	// path. Opening a file is the only I/O a Build may do.
	Sink(spec string) (Sink, error)
}

// Sink is one log output: buffered, safe for concurrent use. Package
// telemetry declares it, beside the Sinks that hand it out.
type Sink = telemetry.Sink

var _ LogSinks = (*telemetry.Sinks)(nil)

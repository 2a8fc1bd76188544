// Package ratelimit implements two plugins, on the decision engine in
// internal/limiter.
//
// rate_limit (phase PhaseRateLimit, after authentication) limits requests
// per key: the client address, the consumer, the credential, the route, a
// header or a token claim, or a combination. Its limits come from its own
// settings or, with tier: true, from the consumer's tier.
//
// ip_rate_limit (phase PhaseRateLimitEarly, before authentication) limits
// requests per client address only, so floods are refused before any
// credential is checked.
//
// Counters live in a limiter that outlives config reloads (in memory, or
// in Redis when store.redis is set). Every counter key is namespaced by
// where the plugin was configured:
//
//	rl:route:<route>:<limit>:<key>    on a route
//	rl:service:<service>:<limit>:<key> on a service
//	rl:global::<limit>:<key>           in the global plugins
//	rl:consumer:<name>:<limit>:<key>   a consumer's own rate_limit
//	rl:shared:<share>:<limit>:<key>    with share: NAME
//
// so two routes never count together unless they set the same share.
//
// A consumer may set its own rate_limit (consumers[].plugins, handed to
// Build as BuildEnv.ConsumerPlugins): for that consumer's requests it
// decides instead of the route's, on every route, with one budget across
// them. Those limiters are built once per snapshot and shared by the
// routes.
//
// ip_rate_limit's own counters start with rl:ip:route:, rl:ip:service: or
// rl:ip:global:, so they never meet rate_limit's by accident.
//
// Allowed responses carry RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset for the most restrictive limit; refused ones get 429 with
// Retry-After and a problem JSON body.
package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/limiter"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Names of the two plugins.
const (
	Name   = "rate_limit"
	IPName = "ip_rate_limit"
)

// Registration declares the rate_limit pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseRateLimit,
		// A consumer may set its own limits; every chain then gets an
		// instance (without limits of its own when the route sets none)
		// that applies them.
		OnConsumer: true,
		Implicit:   pipeline.WhenConsumersSetIt,
		Spec:       func() pipeline.Spec { return &Spec{Headers: true} },
		Build: func(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
			sp := s.(*Spec)
			keys, err := parseKeys(&sp.Key, config.Path{}.Key("key"))
			if err != nil {
				return nil, err
			}
			l, err := build(specSettings(sp, keys), env)
			if err != nil {
				return nil, err
			}
			consumers, err := consumerLimiters(env)
			if err != nil {
				return nil, err
			}
			l.consumers = onRoute(consumers, env)
			return l.middleware, nil
		},
	}
}

// specSettings are the settings of a rate_limit Spec with its parsed keys.
func specSettings(sp *Spec, keys []keyPart) settings {
	return settings{limits: sp.Limits, tier: sp.Tier, keys: keys, share: sp.Share,
		headers: sp.Headers, xHeaders: sp.XHeaders, concurrency: sp.Concurrency, mode: sp.Mode, lease: sp.Lease}
}

// IPRegistration declares the ip_rate_limit pipeline.
func IPRegistration() pipeline.Registration {
	return pipeline.Registration{
		Name:  IPName,
		Phase: pipeline.PhaseRateLimitEarly,
		Spec:  func() pipeline.Spec { return &IPSpec{Headers: true} },
		Build: func(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
			sp := s.(*IPSpec)
			l, err := build(settings{plugin: "ip:", limits: sp.Limits, keys: []keyPart{{kind: keyIP}}, share: sp.Share,
				headers: sp.Headers, xHeaders: sp.XHeaders}, env)
			if err != nil {
				return nil, err
			}
			return l.middleware, nil
		},
	}
}

// settings are what both plugins share once decoded.
type settings struct {
	limits            []config.RateLimit
	tier              bool
	keys              []keyPart
	share             string
	headers, xHeaders bool
	concurrency       int
	mode              string // "", exact or batched
	lease             int64  // batched lease size; 0: 1% of each limit
	// plugin prefixes the namespace of ip_rate_limit ("ip:") so that its
	// counters never meet rate_limit's on the same route, even when both
	// name a limit alike. Empty for rate_limit.
	plugin string
	// consumer names the consumer whose own rate_limit these settings
	// are: its counters are namespaced consumer:<name>. Empty otherwise.
	consumer string
}

// policy is the compiled limits of one caller class.
type policy struct {
	unlimited bool
	rules     []compiledRule
}

type compiledRule struct {
	rule      limiter.Rule
	prefix    string                       // "rl:<namespace>:<limit name>:"
	decisions telemetry.RateLimitDecisions // on the route the chain serves
}

type rateLimiter struct {
	lim         limiter.Limiter
	namespace   string
	base        policy
	tiers       map[string]policy // nil unless tier: true
	keys        []keyPart
	headers     bool
	xHeaders    bool
	concurrency int64
	inflight    *inflight
	// stored times the limiter's decisions and counts its store failures;
	// refused counts concurrency refusals (limit "concurrency") on the
	// route the chain serves. A consumer's limiter, built with no route,
	// counts through the views that on makes for each route.
	stored  telemetry.RateLimitStore
	refused telemetry.RateLimitDecisions
	// consumers are the limiters of the consumers that set their own
	// rate_limit, by consumer name: they decide those consumers' requests
	// instead of this one. Built once per snapshot and shared by every
	// route, each route holding views that count on it.
	consumers map[string]*rateLimiter
}

func build(s settings, env *pipeline.BuildEnv) (*rateLimiter, error) {
	shared := env.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	lim, err := limiterFor(shared, env, s)
	if err != nil {
		return nil, err
	}
	l := &rateLimiter{
		lim:      lim,
		keys:     s.keys,
		headers:  s.headers,
		xHeaders: s.xHeaders,
		stored:   env.Telemetry.RateLimitStore(),
	}
	switch {
	case s.share != "":
		l.namespace = "shared:" + s.share
	case s.consumer != "":
		l.namespace = "consumer:" + s.consumer
	case env.Scope == pipeline.ScopeRoute:
		l.namespace = "route:" + env.Route
	case env.Scope == pipeline.ScopeService:
		l.namespace = "service:" + env.Service
	default:
		l.namespace = "global:"
	}
	if s.share == "" {
		l.namespace = s.plugin + l.namespace
	}
	l.base = l.compile("", s.limits)
	if s.tier {
		l.tiers = make(map[string]policy, len(env.Tiers))
		for name, t := range env.Tiers {
			if t.RateLimit.Unlimited {
				l.tiers[name] = policy{unlimited: true}
				continue
			}
			l.tiers[name] = l.compile("tier."+name+".", t.RateLimit.Limits)
		}
	}
	if s.concurrency > 0 {
		l.concurrency = int64(s.concurrency)
		l.inflight = pipeline.Get(shared, inflightKey, newInflight)
	}
	if s.consumer != "" {
		return l, nil
	}
	return l.on(env.Telemetry, env.Route), nil
}

// on returns a view of l that counts its decisions on route: the same
// limiter, keys, limits and in-flight counts, with decision counters
// resolved for route. A consumer's limiter keeps one budget across routes
// while each route counts its own decisions.
func (l *rateLimiter) on(tel *telemetry.Telemetry, route string) *rateLimiter {
	v := *l
	v.refused = tel.RateLimitDecisions(route, "concurrency")
	v.base = l.base.on(tel, route)
	if l.tiers != nil {
		v.tiers = make(map[string]policy, len(l.tiers))
		for name, p := range l.tiers {
			v.tiers[name] = p.on(tel, route)
		}
	}
	return &v
}

// on returns a copy of p whose rules count their decisions on route.
func (p policy) on(tel *telemetry.Telemetry, route string) policy {
	p.rules = slices.Clone(p.rules)
	for i := range p.rules {
		p.rules[i].decisions = tel.RateLimitDecisions(route, p.rules[i].rule.Name)
	}
	return p
}

func (l *rateLimiter) compile(namePrefix string, limits []config.RateLimit) policy {
	p := policy{unlimited: len(limits) == 0}
	for _, c := range limits {
		c.ApplyDefaults()
		name := namePrefix + c.Name
		p.rules = append(p.rules, compiledRule{
			rule: limiter.Rule{Name: name, Limit: c.Limit, Window: c.Window.D(), Burst: c.Burst,
				Algorithm: algorithm(c.Algorithm)},
			prefix: "rl:" + l.namespace + ":" + name + ":",
		})
	}
	return p
}

func algorithm(s string) limiter.Algorithm {
	switch s {
	case "sliding_window":
		return limiter.SlidingWindow
	case "fixed_window":
		return limiter.FixedWindow
	default:
		return limiter.GCRA
	}
}

func (l *rateLimiter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil {
			ex = &pipeline.Exchange{}
		}
		if l.consumers != nil && ex.Consumer != nil {
			if cl, ok := l.consumers[ex.Consumer.Name]; ok {
				cl.serve(w, r, ex, next)
				return
			}
		}
		l.serve(w, r, ex, next)
	})
}

// serve decides r under l's limits and passes it to next or refuses it.
func (l *rateLimiter) serve(w http.ResponseWriter, r *http.Request, ex *pipeline.Exchange, next http.Handler) {
	key := l.key(r, ex)
	if l.inflight != nil {
		ckey := "rl:" + l.namespace + ":concurrency:" + key
		if !l.inflight.acquire(ckey, l.concurrency) {
			l.refused.Record(false)
			w.Header().Set("Retry-After", "1")
			problem.Write(w, r, http.StatusServiceUnavailable, "",
				"too many requests in flight for this caller; retry shortly")
			return
		}
		defer l.inflight.release(ckey)
	}
	pol := l.base
	if l.tiers != nil && ex.Consumer != nil && ex.Consumer.Tier != "" {
		if tp, ok := l.tiers[ex.Consumer.Tier]; ok {
			pol = tp
		}
	}
	if pol.unlimited {
		next.ServeHTTP(w, r)
		return
	}
	var shown limiter.Decision
	var denied *limiter.Decision
	for i, cr := range pol.rules {
		start := time.Now()
		d, err := l.lim.Allow(r.Context(), cr.prefix+key, cr.rule)
		l.stored.Observe(time.Since(start), err)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			detail := "the rate limit could not be checked; retry shortly"
			if !errors.Is(err, limiter.ErrUnavailable) {
				detail = "the rate limit could not be checked"
			}
			problem.Write(w, r, http.StatusServiceUnavailable, "", detail)
			return
		}
		cr.decisions.Record(d.Allowed)
		if !d.Allowed {
			if denied == nil || d.RetryAfter > denied.RetryAfter {
				dd := d
				denied = &dd
			}
			continue
		}
		if i == 0 || d.Remaining < shown.Remaining || d.Remaining == shown.Remaining && d.Reset > shown.Reset {
			shown = d
		}
	}
	if denied != nil {
		l.setHeaders(w.Header(), *denied)
		w.Header().Set("Retry-After", seconds(denied.RetryAfter))
		problem.Write(w, r, http.StatusTooManyRequests, "",
			"rate limit exceeded; retry after "+seconds(denied.RetryAfter)+" seconds")
		return
	}
	l.setHeaders(w.Header(), shown)
	next.ServeHTTP(w, r)
}

func (l *rateLimiter) setHeaders(h http.Header, d limiter.Decision) {
	limit, remaining, reset := strconv.FormatInt(d.Limit, 10), strconv.FormatInt(max(d.Remaining, 0), 10), resetSeconds(d.Reset)
	if l.headers {
		h.Set("RateLimit-Limit", limit)
		h.Set("RateLimit-Remaining", remaining)
		h.Set("RateLimit-Reset", reset)
	}
	if l.xHeaders {
		h.Set("X-RateLimit-Limit", limit)
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Reset", reset)
	}
}

// seconds writes d in whole seconds, rounded up, at least 1 (Retry-After).
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// resetSeconds writes d in whole seconds, rounded up (0 when restored).
func resetSeconds(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// maxKeyPart bounds a caller-supplied key part; longer values are hashed.
const maxKeyPart = 128

// key builds the counter key of the request from the configured parts.
func (l *rateLimiter) key(r *http.Request, ex *pipeline.Exchange) string {
	var b strings.Builder
	for i, kp := range l.keys {
		if i > 0 {
			b.WriteByte('|')
		}
		switch kp.kind {
		case keyIP:
			writeIP(&b, ex)
		case keyConsumer:
			if ex.Consumer != nil && ex.Consumer.ID != "" {
				b.WriteString("consumer=")
				writeValue(&b, ex.Consumer.ID)
			} else {
				writeIP(&b, ex)
			}
		case keyCredential:
			if ex.Credential != "" {
				b.WriteString("credential=")
				writeValue(&b, ex.Credential)
			} else {
				writeIP(&b, ex)
			}
		case keyRoute:
			b.WriteString("route=")
			b.WriteString(ex.Route)
		case keyHeader:
			if v := r.Header.Get(kp.name); v != "" {
				b.WriteString("header=")
				writeValue(&b, v)
			} else {
				writeIP(&b, ex)
			}
		case keyClaim:
			if v, ok := claimString(ex.Claims[kp.name]); ok {
				b.WriteString("claim=")
				writeValue(&b, v)
			} else {
				writeIP(&b, ex)
			}
		}
	}
	return b.String()
}

func writeIP(b *strings.Builder, ex *pipeline.Exchange) {
	b.WriteString("ip=")
	if ex.ClientIP.IsValid() {
		b.WriteString(ex.ClientIP.Unmap().String())
	} else {
		b.WriteString("unknown")
	}
}

// writeValue writes a caller-supplied value; long ones as their hash so
// keys stay short.
func writeValue(b *strings.Builder, v string) {
	if len(v) <= maxKeyPart {
		b.WriteString(v)
		return
	}
	sum := sha256.Sum256([]byte(v))
	b.WriteString("sha256:")
	b.WriteString(hex.EncodeToString(sum[:]))
}

func claimString(v any) (string, bool) {
	switch c := v.(type) {
	case string:
		return c, c != ""
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(c), true
	}
	return "", false
}

package config

import (
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// resilience checks the load balancing, health check, breaker, retry and
// TLS settings of every service, and the retries and fallback of every
// route.
func (v *validator) resilience() {
	for i := range v.c.Services {
		s, p := &v.c.Services[i], Path{}.Index("services", i)
		v.loadBalancer(p.Key("load_balancer"), &s.LoadBalancer)
		v.activeCheck(p.Key("health_check").Key("active"), s.HealthCheck.Active)
		v.passiveCheck(p.Key("health_check").Key("passive"), s.HealthCheck.Passive)
		v.breaker(p.Key("circuit_breaker"), s.CircuitBreaker)
		v.retries(p.Key("retries"), s.Retries)
		v.upstreamTLS(p, s)
	}
	for i := range v.c.Routes {
		r, p := &v.c.Routes[i], Path{}.Index("routes", i)
		v.retries(p.Key("retries"), r.Retries)
		v.fallback(p.Key("fallback"), r.Fallback)
	}
}

var balancers = []string{"round_robin", "least_request", "ewma", "consistent_hash"}

func (v *validator) loadBalancer(p Path, lb *LoadBalancer) {
	if !slices.Contains(balancers, lb.Algorithm) {
		msg := "unknown algorithm %q; use one of " + strings.Join(balancers, ", ")
		if s := Suggest(lb.Algorithm, balancers); s != "" {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		}
		v.errf(p.Key("algorithm"), msg, lb.Algorithm)
		return
	}
	if lb.Algorithm != "consistent_hash" {
		switch {
		case lb.HashOn != "":
			v.errf(p.Key("hash_on"), "only applies to algorithm consistent_hash")
		case lb.HashKey != "":
			v.errf(p.Key("hash_key"), "only applies to algorithm consistent_hash")
		case lb.LoadFactor != 0:
			v.errf(p.Key("load_factor"), "only applies to algorithm consistent_hash")
		}
		return
	}
	switch lb.HashOn {
	case "client_ip":
		if lb.HashKey != "" {
			v.errf(p.Key("hash_key"), "is not used with hash_on client_ip")
		}
	case "header", "cookie":
		if lb.HashKey == "" {
			v.errf(p.Key("hash_key"), "is required with hash_on %s: name the %s to hash", lb.HashOn, lb.HashOn)
		} else if lb.HashOn == "header" && !IsHeaderName(lb.HashKey) {
			v.errf(p.Key("hash_key"), "%q is not a valid header name", lb.HashKey)
		} else if lb.HashOn == "cookie" && !httpsyntax.IsToken(lb.HashKey) {
			v.errf(p.Key("hash_key"), "%q is not a valid cookie name", lb.HashKey)
		}
	default:
		v.errf(p.Key("hash_on"), "unknown value %q; use client_ip, header or cookie", lb.HashOn)
	}
	if lb.LoadFactor < 1 || lb.LoadFactor > 10 {
		v.errf(p.Key("load_factor"), "must be between 1 and 10 (1.25 lets a target carry 25%% more than the mean)")
	}
}

func (v *validator) activeCheck(p Path, a *ActiveHealthCheck) {
	if a == nil {
		return
	}
	if a.Path == "" {
		v.errf(p.Key("path"), `is required, like "/health"`)
	} else if u, err := url.Parse(a.Path); err != nil || !strings.HasPrefix(a.Path, "/") || u.Host != "" || u.Fragment != "" {
		v.errf(p.Key("path"), `must be a request path starting with "/", like "/health"`)
	}
	v.positiveDuration(p.Key("interval"), a.Interval, time.Second/10)
	v.positiveDuration(p.Key("timeout"), a.Timeout, time.Millisecond)
	if a.Timeout > a.Interval {
		v.errf(p.Key("timeout"), "must not be longer than interval (%s)", a.Interval.D())
	}
	for j, st := range a.ExpectedStatuses {
		if st < 100 || st > 599 {
			v.errf(p.Index("expected_statuses", j), "must be an HTTP status from 100 to 599")
		}
	}
	v.count(p.Key("healthy_threshold"), a.HealthyThreshold, 1, 100)
	v.count(p.Key("unhealthy_threshold"), a.UnhealthyThreshold, 1, 100)
	if a.Host != "" && !validHostHeader(a.Host) {
		v.errf(p.Key("host"), "must be a host name, optionally with :port")
	}
}

func (v *validator) passiveCheck(p Path, c *PassiveHealthCheck) {
	if c == nil {
		return
	}
	v.countOrOff(p.Key("consecutive_5xx"), c.Consecutive5xx)
	v.countOrOff(p.Key("consecutive_failures"), c.ConsecutiveFailures)
	if c.Consecutive5xx < 0 && c.ConsecutiveFailures < 0 {
		v.errf(p, "both triggers are disabled; remove passive or enable one")
	}
	v.positiveDuration(p.Key("base_ejection"), c.BaseEjection, 100*time.Millisecond)
	v.positiveDuration(p.Key("max_ejection"), c.MaxEjection, 100*time.Millisecond)
	if c.MaxEjection < c.BaseEjection {
		v.errf(p.Key("max_ejection"), "must not be shorter than base_ejection (%s)", c.BaseEjection.D())
	}
	v.count(p.Key("max_ejected_percent"), c.MaxEjectedPercent, 0, 100)
}

func (v *validator) breaker(p Path, b *CircuitBreaker) {
	if b == nil {
		return
	}
	v.countOrOff(p.Key("consecutive_failures"), b.ConsecutiveFailures)
	if b.ErrorRatio < 0 || b.ErrorRatio > 1 {
		v.errf(p.Key("error_ratio"), "must be between 0 (off) and 1, like 0.5")
	}
	if b.ConsecutiveFailures < 0 && b.ErrorRatio == 0 {
		v.errf(p, "no trigger is enabled; set consecutive_failures or error_ratio")
	}
	v.positiveDuration(p.Key("window"), b.Window, time.Second)
	v.count(p.Key("min_requests"), b.MinRequests, 1, 1000000)
	v.positiveDuration(p.Key("open_for"), b.OpenFor, 100*time.Millisecond)
	v.count(p.Key("half_open_probes"), b.HalfOpenProbes, 1, 1000)
}

func (v *validator) retries(p Path, r *Retries) {
	if r == nil {
		return
	}
	v.count(p.Key("attempts"), r.Attempts, 1, 10)
	v.positiveDuration(p.Key("backoff"), r.Backoff, time.Millisecond)
	v.positiveDuration(p.Key("max_backoff"), r.MaxBackoff, time.Millisecond)
	if r.MaxBackoff < r.Backoff {
		v.errf(p.Key("max_backoff"), "must not be shorter than backoff (%s)", r.Backoff.D())
	}
	for j, st := range r.Statuses {
		if st < 500 || st > 599 {
			v.errf(p.Index("statuses", j), "must be a 5xx status; only server errors are retried")
		}
	}
	if r.BufferBody > 16<<20 {
		v.errf(p.Key("buffer_body"), "must be at most 16MiB: every retried request may hold this much memory")
	}
	bp := p.Key("budget")
	if r.Budget.Ratio <= 0 || r.Budget.Ratio > 1 {
		v.errf(bp.Key("ratio"), "must be above 0 and at most 1, like 0.2 (retries at most 20%% of requests)")
	}
	v.positiveDuration(bp.Key("window"), r.Budget.Window, time.Second)
	v.count(bp.Key("min_per_second"), r.Budget.MinPerSecond, 0, 100000)
}

func (v *validator) upstreamTLS(p Path, s *Service) {
	https := false
	for _, t := range s.Targets {
		https = https || strings.HasPrefix(strings.ToLower(t.URL), "https:")
	}
	t := s.TLS
	if t == nil {
		return
	}
	tp := p.Key("tls")
	if !https {
		v.errf(tp, "is set but no target of the service is https")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errf(tp, "cert_file and key_file go together: set both for mutual TLS, or neither")
	}
	if t.ServerName != "" && !validDNSName(strings.ToLower(t.ServerName)) && !validIP(t.ServerName) {
		v.errf(tp.Key("server_name"), "must be a DNS name")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.errf(tp.Key("min_version"), `must be "1.2" or "1.3"`)
	}
}

func (v *validator) fallback(p Path, f *Fallback) {
	if f == nil {
		return
	}
	if f.Status < 200 || f.Status > 599 {
		v.errf(p.Key("status"), "must be an HTTP status from 200 to 599")
	}
	for _, k := range sortedKeys(f.Headers) {
		switch {
		case !IsHeaderName(k):
			v.errf(p.Key("headers").Key(k), "%q is not a valid header name", k)
		case !httpsyntax.IsFieldValue(f.Headers[k]):
			v.errf(p.Key("headers").Key(k), "value must not contain control characters")
		case slices.Contains([]string{"Content-Length", "Transfer-Encoding", "Connection"}, textproto.CanonicalMIMEHeaderKey(k)):
			v.errf(p.Key("headers").Key(k), "is set by the gateway")
		}
	}
	if len(f.Body) > 64<<10 {
		v.errf(p.Key("body"), "must be at most 64KiB")
	}
}

func (v *validator) positiveDuration(p Path, d Duration, least time.Duration) {
	if d.D() < least {
		v.errf(p, "must be at least %s", least)
	}
}

func (v *validator) count(p Path, n, lo, hi int) {
	if n < lo || n > hi {
		v.errf(p, "must be between %d and %d", lo, hi)
	}
}

func (v *validator) countOrOff(p Path, n int) {
	if n == 0 || n < -1 || n > 1000 {
		v.errf(p, "must be between 1 and 1000, or -1 to disable")
	}
}

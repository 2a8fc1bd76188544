package config

import "time"

// This file holds the schema of a service's resilience settings: how a
// target is chosen, how its health is known, when the service is cut off,
// and how a failed request is retried.

// Defaults of the resilience settings.
const (
	// DefaultBalancer is the load-balancing algorithm.
	DefaultBalancer = "round_robin"
	// DefaultHashOn is what consistent_hash hashes.
	DefaultHashOn = "client_ip"
	// DefaultLoadFactor bounds a consistent_hash target's load relative to
	// the mean.
	DefaultLoadFactor = 1.25

	// DefaultHealthInterval is the time between two active checks.
	DefaultHealthInterval = Duration(5 * time.Second)
	// DefaultHealthTimeout bounds one active check.
	DefaultHealthTimeout = Duration(2 * time.Second)
	// DefaultHealthyThreshold is the number of passing checks that make an
	// unhealthy target healthy again.
	DefaultHealthyThreshold = 2
	// DefaultUnhealthyThreshold is the number of failing checks that make
	// a target unhealthy.
	DefaultUnhealthyThreshold = 3

	// DefaultConsecutive5xx ejects a target after this many 5xx in a row.
	DefaultConsecutive5xx = 5
	// DefaultConsecutiveFailures ejects a target after this many connection
	// failures or timeouts in a row.
	DefaultConsecutiveFailures = 3
	// DefaultBaseEjection is the first ejection's length; each repeat adds
	// as much again.
	DefaultBaseEjection = Duration(10 * time.Second)
	// DefaultMaxEjection caps an ejection's length.
	DefaultMaxEjection = Duration(5 * time.Minute)
	// DefaultMaxEjectedPercent caps the share of a service's targets that
	// may be ejected at once.
	DefaultMaxEjectedPercent = 50

	// DefaultBreakerFailures opens a breaker after this many failures in a
	// row.
	DefaultBreakerFailures = 5
	// DefaultBreakerWindow is the rolling window of the error ratio.
	DefaultBreakerWindow = Duration(10 * time.Second)
	// DefaultBreakerMinRequests is the least number of requests in the
	// window before the error ratio may open the breaker.
	DefaultBreakerMinRequests = 20
	// DefaultBreakerOpenFor is how long an open breaker rejects requests
	// before it lets probes through.
	DefaultBreakerOpenFor = Duration(10 * time.Second)
	// DefaultBreakerHalfOpenProbes is the number of requests a half-open
	// breaker admits at once.
	DefaultBreakerHalfOpenProbes = 1

	// DefaultRetryAttempts is the number of attempts (the first one
	// included) when a retries block is present.
	DefaultRetryAttempts = 3
	// DefaultRetryBackoff is the base of the exponential backoff.
	DefaultRetryBackoff = Duration(25 * time.Millisecond)
	// DefaultRetryMaxBackoff caps one backoff.
	DefaultRetryMaxBackoff = Duration(250 * time.Millisecond)
	// DefaultRetryBufferBody is the largest request body kept for replay.
	DefaultRetryBufferBody = ByteSize(64 << 10)
	// DefaultRetryBudgetRatio is the share of requests that may be retries.
	DefaultRetryBudgetRatio = 0.2
	// DefaultRetryBudgetWindow is the window over which the ratio holds.
	DefaultRetryBudgetWindow = Duration(10 * time.Second)
	// DefaultRetryBudgetMinPerSecond is the retry rate always allowed, so a
	// quiet service can still retry.
	DefaultRetryBudgetMinPerSecond = 5

	// DefaultFallbackStatus is a fallback response's status.
	DefaultFallbackStatus = 503
)

// DefaultRetryStatuses are the upstream statuses retried by default.
var DefaultRetryStatuses = []int{502, 503, 504}

// LoadBalancer chooses the target of each request among the healthy ones.
type LoadBalancer struct {
	// Algorithm is round_robin (smooth weighted round robin, the default),
	// least_request (fewest in-flight requests, weighted), ewma (power of
	// two random choices on latency × in-flight) or consistent_hash.
	Algorithm string `yaml:"algorithm"`
	// HashOn is what consistent_hash hashes: client_ip (default), header
	// or cookie.
	HashOn string `yaml:"hash_on"`
	// HashKey names the header or cookie for hash_on header or cookie.
	HashKey string `yaml:"hash_key"`
	// LoadFactor bounds the load of one consistent_hash target to this
	// multiple of the mean in-flight load, so one hot key cannot overload
	// a target (consistent hashing with bounded loads). Default 1.25;
	// range 1..10.
	LoadFactor float64 `yaml:"load_factor"`
}

// HealthCheck configures how target health is known.
type HealthCheck struct {
	// Active probes every target on a timer.
	Active *ActiveHealthCheck `yaml:"active"`
	// Passive ejects targets that fail real requests (outlier detection).
	Passive *PassiveHealthCheck `yaml:"passive"`
}

// ActiveHealthCheck probes each target with an HTTP GET.
type ActiveHealthCheck struct {
	// Path is the probe's request path, e.g. "/health". Required.
	Path string `yaml:"path"`
	// Interval is the time between probes of one target. Default 5s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one probe. Default 2s; below Interval.
	Timeout Duration `yaml:"timeout"`
	// ExpectedStatuses are the statuses of a passing probe. Default: any
	// 2xx or 3xx.
	ExpectedStatuses []int `yaml:"expected_statuses"`
	// HealthyThreshold is the number of passing probes in a row that make
	// an unhealthy target healthy. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is the number of failing probes in a row that
	// make a healthy target unhealthy. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// Host is the probe's Host header. Default: the target's host.
	Host string `yaml:"host"`
}

// PassiveHealthCheck ejects a target that fails real requests.
type PassiveHealthCheck struct {
	// Consecutive5xx ejects a target after this many 5xx answers in a row.
	// Default 5; -1 disables.
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// ConsecutiveFailures ejects a target after this many connection
	// failures or timeouts in a row. Default 3; -1 disables.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseEjection is the length of a first ejection; the n-th ejection in
	// a row lasts n times as long. Default 10s.
	BaseEjection Duration `yaml:"base_ejection"`
	// MaxEjection caps an ejection. Default 5m.
	MaxEjection Duration `yaml:"max_ejection"`
	// MaxEjectedPercent caps the share of the service's targets ejected at
	// once. Default 50; range 0..100.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
}

// CircuitBreaker stops sending requests to a failing service for a while.
type CircuitBreaker struct {
	// ConsecutiveFailures opens the breaker after this many failed requests
	// in a row (connection failures, timeouts, 5xx). Default 5; -1
	// disables this trigger.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// ErrorRatio opens the breaker when the share of failed requests in
	// Window reaches it (with at least MinRequests). Default 0: off;
	// range 0..1.
	ErrorRatio float64 `yaml:"error_ratio"`
	// Window is the rolling window of ErrorRatio. Default 10s.
	Window Duration `yaml:"window"`
	// MinRequests is the least number of requests in Window before
	// ErrorRatio applies. Default 20.
	MinRequests int `yaml:"min_requests"`
	// OpenFor is how long an open breaker rejects requests (with 503 and
	// Retry-After) before it admits probes. Default 10s.
	OpenFor Duration `yaml:"open_for"`
	// HalfOpenProbes is the number of requests admitted at once while
	// half-open; they all succeeding closes the breaker. Default 1.
	HalfOpenProbes int `yaml:"half_open_probes"`
	// PerTarget adds one breaker per target with the same settings: an
	// open target breaker takes the target out of balancing. Default false.
	PerTarget bool `yaml:"per_target"`
}

// Retries retries a failed request, preferably on another target.
type Retries struct {
	// Attempts is the number of attempts, the first one included.
	// Default 3; range 1..10 (1: no retries).
	Attempts int `yaml:"attempts"`
	// Backoff is the base of the exponential backoff with full jitter: the
	// n-th retry waits a random time in [0, min(MaxBackoff, Backoff×2^(n-1))].
	// Default 25ms.
	Backoff Duration `yaml:"backoff"`
	// MaxBackoff caps one wait. Default 250ms.
	MaxBackoff Duration `yaml:"max_backoff"`
	// Statuses are the upstream answers that are retried. Default [502,
	// 503, 504]. Connection failures and per-attempt timeouts are always
	// retried.
	Statuses []int `yaml:"statuses"`
	// NonIdempotent retries every method. By default only GET, HEAD,
	// OPTIONS, PUT and DELETE are retried, and other methods only when the
	// request has an Idempotency-Key header.
	NonIdempotent bool `yaml:"non_idempotent"`
	// BufferBody is the largest request body kept for a replay; a larger
	// body is streamed and not retried. Default 64KiB.
	BufferBody ByteSize `yaml:"buffer_body"`
	// Budget caps retries as a share of requests, so retries cannot
	// multiply an outage.
	Budget RetryBudget `yaml:"budget"`
}

// RetryBudget caps the retries of a service.
type RetryBudget struct {
	// Ratio is the share of requests over Window that may be retried.
	// Default 0.2; range 0..1.
	Ratio float64 `yaml:"ratio"`
	// Window is the time over which Ratio holds. Default 10s.
	Window Duration `yaml:"window"`
	// MinPerSecond retries are always allowed, so a quiet service still
	// retries. Default 5.
	MinPerSecond int `yaml:"min_per_second"`
}

// UpstreamTLS configures connections to https targets.
type UpstreamTLS struct {
	// CAFile holds the PEM certificates that verify the targets. Default:
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key presented to
	// the targets (mutual TLS). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name sent in SNI and verified in the target's
	// certificate. Default: the target URL's host.
	ServerName string `yaml:"server_name"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Fallback is the answer a route gives instead of a gateway error when its
// service cannot answer: no healthy target, the breaker open, or every
// attempt failed (502, 503, 504).
type Fallback struct {
	// Status is the response status. Default 503.
	Status int `yaml:"status"`
	// Headers are set on the response. Content-Type defaults to
	// application/json when Body starts with "{" or "[", text/plain
	// otherwise.
	Headers map[string]string `yaml:"headers"`
	// Body is the response body.
	Body string `yaml:"body"`
}

// applyResilienceDefaults fills the defaults of a service's resilience
// blocks that are present. Absent blocks stay nil: the feature is off.
func (s *Service) applyResilienceDefaults() {
	lb := &s.LoadBalancer
	setDefault(&lb.Algorithm, DefaultBalancer)
	if lb.Algorithm == "consistent_hash" {
		setDefault(&lb.HashOn, DefaultHashOn)
		setDefault(&lb.LoadFactor, DefaultLoadFactor)
	}
	if a := s.HealthCheck.Active; a != nil {
		setDefault(&a.Interval, DefaultHealthInterval)
		setDefault(&a.Timeout, DefaultHealthTimeout)
		setDefault(&a.HealthyThreshold, DefaultHealthyThreshold)
		setDefault(&a.UnhealthyThreshold, DefaultUnhealthyThreshold)
	}
	if p := s.HealthCheck.Passive; p != nil {
		setDefault(&p.Consecutive5xx, DefaultConsecutive5xx)
		setDefault(&p.ConsecutiveFailures, DefaultConsecutiveFailures)
		setDefault(&p.BaseEjection, DefaultBaseEjection)
		setDefault(&p.MaxEjection, DefaultMaxEjection)
		setDefault(&p.MaxEjectedPercent, DefaultMaxEjectedPercent)
	}
	if b := s.CircuitBreaker; b != nil {
		setDefault(&b.ConsecutiveFailures, DefaultBreakerFailures)
		setDefault(&b.Window, DefaultBreakerWindow)
		setDefault(&b.MinRequests, DefaultBreakerMinRequests)
		setDefault(&b.OpenFor, DefaultBreakerOpenFor)
		setDefault(&b.HalfOpenProbes, DefaultBreakerHalfOpenProbes)
	}
	if s.Retries != nil {
		s.Retries.ApplyDefaults()
	}
	if s.TLS != nil {
		setDefault(&s.TLS.MinVersion, DefaultTLSMinVersion)
	}
}

// ApplyDefaults fills a retries block's empty fields.
func (r *Retries) ApplyDefaults() {
	setDefault(&r.Attempts, DefaultRetryAttempts)
	setDefault(&r.Backoff, DefaultRetryBackoff)
	setDefault(&r.MaxBackoff, DefaultRetryMaxBackoff)
	if r.Statuses == nil {
		r.Statuses = append([]int(nil), DefaultRetryStatuses...)
	}
	setDefault(&r.BufferBody, DefaultRetryBufferBody)
	setDefault(&r.Budget.Ratio, DefaultRetryBudgetRatio)
	setDefault(&r.Budget.Window, DefaultRetryBudgetWindow)
	setDefault(&r.Budget.MinPerSecond, DefaultRetryBudgetMinPerSecond)
}

package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Algorithm selects how a Rule counts requests.
type Algorithm int

// The algorithms; the zero value is GCRA.
const (
	// GCRA is the generic cell rate algorithm: smooth, with a burst.
	GCRA Algorithm = iota
	// SlidingWindow is a weighted two-window counter: approximate, bounded.
	SlidingWindow
	// FixedWindow counts per epoch-aligned window: simple, up to 2x at edges.
	FixedWindow
)

// String returns the configuration name of a: gcra, sliding_window or
// fixed_window.
func (a Algorithm) String() string {
	switch a {
	case GCRA:
		return "gcra"
	case SlidingWindow:
		return "sliding_window"
	case FixedWindow:
		return "fixed_window"
	}
	return fmt.Sprintf("algorithm(%d)", int(a))
}

// ParseAlgorithm maps a configuration name to an Algorithm; "" is GCRA.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "", "gcra":
		return GCRA, nil
	case "sliding_window":
		return SlidingWindow, nil
	case "fixed_window":
		return FixedWindow, nil
	}
	return GCRA, fmt.Errorf("%w: unknown algorithm %q (want gcra, sliding_window or fixed_window)", ErrInvalidRule, s)
}

// Rule is one compiled limit: Limit requests per Window.
type Rule struct {
	// Name identifies the limit in headers and metrics; the Limiter ignores it.
	Name string
	// Limit is the number of requests per Window, >= 1.
	Limit int64
	// Window is the period, 1ms..366 days.
	Window time.Duration
	// Burst is, for GCRA, the number of requests allowed at once; <= 0 means
	// Limit. Other algorithms ignore it.
	Burst int64
	// Algorithm is how requests are counted; the zero value is GCRA.
	Algorithm Algorithm
}

// RuleFrom compiles one configured limit into a Rule and validates it.
// Name defaults to the window in Go syntax ("1m0s" is written "1m").
func RuleFrom(c config.RateLimit) (Rule, error) {
	alg, err := ParseAlgorithm(c.Algorithm)
	if err != nil {
		return Rule{}, err
	}
	r := Rule{Name: c.Name, Limit: c.Limit, Window: c.Window.D(), Burst: c.Burst, Algorithm: alg}
	if r.Name == "" {
		r.Name = config.WindowName(r.Window)
	}
	return r, r.Validate()
}

// Validate reports whether r can be decided; errors wrap ErrInvalidRule.
func (r Rule) Validate() error {
	switch {
	case r.Limit < 1:
		return fmt.Errorf("%w: limit %d must be >= 1", ErrInvalidRule, r.Limit)
	case r.Window < time.Millisecond || r.Window > maxWindow:
		return fmt.Errorf("%w: window %s must be between 1ms and %s", ErrInvalidRule, r.Window, maxWindow)
	case r.Algorithm < GCRA || r.Algorithm > FixedWindow:
		return fmt.Errorf("%w: unknown algorithm %d", ErrInvalidRule, int(r.Algorithm))
	}
	return nil
}

// maxWindow bounds Rule.Window so window arithmetic on Unix nanoseconds
// cannot overflow.
const maxWindow = 366 * 24 * time.Hour

// burst is the effective GCRA burst.
func (r Rule) burst() int64 {
	if r.Burst <= 0 {
		return r.Limit
	}
	return r.Burst
}

// share returns r scaled down to one of n instances: ceil(Limit/n) and
// ceil(Burst/n), never below 1.
func (r Rule) share(n int) Rule {
	if n <= 1 {
		return r
	}
	div := func(v int64) int64 { return max(1, (v+int64(n)-1)/int64(n)) }
	r.Burst = div(r.burst())
	r.Limit = div(r.Limit)
	return r
}

// Decision is the answer for one request.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the rule's limit (RateLimit-Limit).
	Limit int64
	// Remaining is how many more requests would be allowed now, >= 0
	// (RateLimit-Remaining).
	Remaining int64
	// Reset is the time until the quota is fully restored (GCRA, sliding
	// window) or the window ends (fixed window) (RateLimit-Reset).
	Reset time.Duration
	// RetryAfter is, when !Allowed, how long to wait before the same key's
	// next request is allowed (Retry-After); 0 when Allowed.
	RetryAfter time.Duration
}

// Limiter decides whether a request identified by key may proceed under r.
// The key is already namespaced by the caller.
type Limiter interface {
	Allow(ctx context.Context, key string, r Rule) (Decision, error)
}

// ErrUnavailable is returned by a fail-closed Resilient limiter while its
// shared store cannot decide; callers answer 503 with Retry-After.
var ErrUnavailable = errors.New("rate limit store unavailable")

// ErrInvalidRule is wrapped by errors about a Rule that cannot be decided.
var ErrInvalidRule = errors.New("invalid rate limit rule")

// Interface guards.
var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
	_ Limiter = (*Resilient)(nil)
)

// mulSat returns a*b for non-negative a and b, saturating at MaxInt64.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

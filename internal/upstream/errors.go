package upstream

import (
	"strconv"
	"time"
)

// OpenError is returned by Service.Admit while the service's circuit
// breaker is open: the proxy answers 503 with Retry-After.
type OpenError struct {
	// Service is the service's name.
	Service string
	// RetryAfter is when the breaker admits requests again.
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return "circuit breaker of service " + strconv.Quote(e.Service) + " is open"
}

// Is makes errors.Is(err, ErrNoTarget) true: an open breaker is one way
// of having no target.
func (e *OpenError) Is(target error) bool { return target == ErrNoTarget }

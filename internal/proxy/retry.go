package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/upstream"
)

// retryPolicy is a route's compiled retries block.
type retryPolicy struct {
	attempts      int
	backoff       time.Duration
	maxBackoff    time.Duration
	statuses      [100]bool // 500..599
	nonIdempotent bool
	bufferBody    int
	budget        RetryBudget // nil: no cap
}

// RetryBudget caps retries as a share of requests (upstream.RetryBudget).
type RetryBudget interface {
	// Request counts one request that may be retried.
	Request(now time.Time)
	// Withdraw reports whether one retry may happen now, and counts it.
	Withdraw(now time.Time) bool
}

func newRetryPolicy(c *config.Retries, budget RetryBudget) *retryPolicy {
	if c == nil || c.Attempts <= 1 {
		return nil
	}
	p := &retryPolicy{
		attempts:      c.Attempts,
		backoff:       c.Backoff.D(),
		maxBackoff:    c.MaxBackoff.D(),
		nonIdempotent: c.NonIdempotent,
		bufferBody:    int(c.BufferBody),
		budget:        budget,
	}
	for _, s := range c.Statuses {
		if s >= 500 && s <= 599 {
			p.statuses[s-500] = true
		}
	}
	return p
}

// allows reports whether r may be sent more than once: idempotent methods
// (RFC 9110 §9.2.2), or any method with an Idempotency-Key header or when
// the route opted in.
func (p *retryPolicy) allows(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return p.nonIdempotent || r.Header.Get("Idempotency-Key") != ""
}

// request counts a request against the budget.
func (p *retryPolicy) request(now time.Time) {
	if p.budget != nil {
		p.budget.Request(now)
	}
}

// withdraw asks the budget for one retry.
func (p *retryPolicy) withdraw(now time.Time) bool {
	return p.budget == nil || p.budget.Withdraw(now)
}

func (p *retryPolicy) retriesStatus(s int) bool {
	return s >= 500 && s <= 599 && p.statuses[s-500]
}

// wait sleeps the backoff before retry number n (1 for the first retry):
// full jitter, a random time below min(maxBackoff, backoff × 2^(n-1)). It
// reports false, at once, when the wait would pass the deadline or the
// client went away.
func (p *retryPolicy) wait(ctx context.Context, n int, deadline time.Time) bool {
	ceil := p.backoff << min(n-1, 20)
	if ceil > p.maxBackoff || ceil <= 0 {
		ceil = p.maxBackoff
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if !deadline.IsZero() && time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// classify turns an attempt's outcome into what it says about the target.
func classify(ctx context.Context, err error, status int) upstream.Result {
	if err == nil {
		if status >= 500 {
			return upstream.ServerError
		}
		return upstream.Success
	}
	var (
		write    *clientWriteError
		body     *clientBodyError
		maxBytes *http.MaxBytesError
	)
	switch {
	case ctx.Err() != nil, errors.Is(err, context.Canceled), errors.As(err, &write),
		errors.As(err, &body), errors.As(err, &maxBytes), errors.Is(err, errBadTarget),
		errors.Is(err, errTunnel): // the target answered; the gateway refuses the answer
		return upstream.Canceled
	}
	return upstream.ConnFailure
}

// isDialError reports a failure to connect: the request was not sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

package upstream

import (
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Service is one configured service of one config snapshot: its name, its
// targets, the balancer, and the resilience state that outlives snapshots
// (the service breaker, kept by the Registry under the service's name). It
// is safe for concurrent use.
type Service struct {
	name    string
	cfg     config.Service
	targets []*Target
	weights []int
	lb      *balancer
	state   *serviceState // shared across snapshots
	outlier *outlier      // nil when passive checks are off
	breaker *Breaker      // service breaker, nil when off
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// Config returns the service's configuration (defaults applied).
func (s *Service) Config() *config.Service { return &s.cfg }

// Targets returns the service's targets in config order.
func (s *Service) Targets() []*Target { return slices.Clone(s.targets) }

// Pick is one chosen target.
type Pick struct {
	// Target is the chosen target; Pos its position in Targets.
	Target *Target
	Pos    int
	// probe reports a half-open probe of the target's breaker.
	probe bool
}

// Pick chooses the target for the next attempt of a request: among the
// available targets (active checks pass, not ejected, breaker not open)
// that the request has not tried, or, when it tried them all, among the
// tried ones. It returns ErrNoTarget when no target is available.
func (s *Service) Pick(req *PickRequest) (Pick, error) {
	if len(s.targets) == 0 {
		return Pick{}, ErrNoTarget
	}
	if len(s.targets) == 1 && s.targets[0].breaker.Load() == nil {
		t := s.targets[0]
		if t.available(time.Now().UnixNano()) {
			return Pick{Target: t}, nil
		}
		return Pick{}, ErrNoTarget
	}
	now := time.Now()
	f := filter{targets: s.targets, now: now.UnixNano(), tried: req.Tried, skipTried: req.Tried.Len() > 0}
	for tries := 0; tries <= len(s.targets); tries++ {
		i := s.lb.pick(req, &f)
		if i < 0 && f.skipTried {
			f.skipTried = false
			i = s.lb.pick(req, &f)
		}
		if i < 0 {
			return Pick{}, ErrNoTarget
		}
		t := s.targets[i]
		b := t.breaker.Load()
		if b == nil {
			return Pick{Target: t, Pos: i}, nil
		}
		probe, _, ok := b.Allow(now)
		if ok {
			return Pick{Target: t, Pos: i, probe: probe}, nil
		}
		// Half-open with its probes taken: try another target.
		if req.Tried == nil {
			req.Tried = new(Tried)
		}
		req.Tried.Add(i)
		f.tried, f.skipTried = req.Tried, true
	}
	return Pick{}, ErrNoTarget
}

// HashKey returns the consistent-hash key of r, when the service hashes
// and r has one.
func (s *Service) HashKey(r *http.Request, clientIP netip.Addr) (uint64, bool) {
	if s.lb == nil {
		return 0, false
	}
	return s.lb.hashKey(r, clientIP)
}

// Admit asks the service breaker whether a request may go to the service.
// When it may not, the error is an *OpenError. probe is passed back to
// Done.
func (s *Service) Admit(now time.Time) (probe bool, err error) {
	if s.breaker == nil {
		return false, nil
	}
	probe, after, ok := s.breaker.Allow(now)
	if !ok {
		return false, &OpenError{Service: s.name, RetryAfter: after}
	}
	return probe, nil
}

// Done records the final outcome of an admitted request with the service
// breaker.
func (s *Service) Done(now time.Time, probe bool, res Result) {
	if s.breaker == nil || res == Canceled {
		return
	}
	s.breaker.Done(now, probe, res != Success)
}

// Report records the outcome of one attempt on a picked target: its
// latency (for the ewma balancer), passive health, and the target breaker.
func (s *Service) Report(p Pick, res Result, latency time.Duration, now time.Time) {
	t := p.Target
	if t == nil || res == Canceled {
		return
	}
	if res != ConnFailure && latency > 0 {
		t.observeLatency(latency)
	}
	s.outlier.observe(t, res, now)
	if b := t.breaker.Load(); b != nil {
		b.Done(now, p.probe, res != Success)
	}
	if res != Success {
		s.state.failures.Add(1)
	}
}

// CountRetry counts one retry of a request to the service.
func (s *Service) CountRetry() { s.state.retries.Add(1) }

// BreakerState returns the service breaker's state ("" when there is
// none).
func (s *Service) BreakerState(now time.Time) string {
	if s.breaker == nil {
		return ""
	}
	return s.breaker.State(now).String()
}

package upstream

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Service is one configured service of one config snapshot: its name, its
// targets and the balancer state. It is safe for concurrent use.
type Service struct {
	name    string
	targets []*Target
	weights []int
	uniform bool // all weights equal: round robin is one atomic add

	rr atomic.Uint64

	mu      sync.Mutex
	current []int
	total   int
}

func newService(name string, targets []*Target, weights []int) *Service {
	s := &Service{
		name:    name,
		targets: targets,
		weights: weights,
		uniform: true,
		current: make([]int, len(targets)),
	}
	for _, w := range weights {
		s.total += w
		if w != weights[0] {
			s.uniform = false
		}
	}
	return s
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// Targets returns the service's targets in config order.
func (s *Service) Targets() []*Target { return slices.Clone(s.targets) }

// Pick returns the target for the next request: smooth weighted round
// robin (the NGINX algorithm) when weights differ, which spreads a target
// of weight 3 among one of weight 1 as a a b a rather than a a a b; plain
// round robin with one atomic add when they are equal. It returns
// ErrNoTarget when the service has none.
func (s *Service) Pick() (*Target, error) {
	n := len(s.targets)
	switch {
	case n == 0:
		return nil, ErrNoTarget
	case n == 1:
		return s.targets[0], nil
	case s.uniform:
		return s.targets[(s.rr.Add(1)-1)%uint64(n)], nil
	}
	s.mu.Lock()
	best := 0
	for i, w := range s.weights {
		s.current[i] += w
		if s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= s.total
	s.mu.Unlock()
	return s.targets[best], nil
}

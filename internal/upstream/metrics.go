package upstream

import (
	"time"

	"github.com/portico-gateway/portico/internal/telemetry"
)

// Report emits the state of the live services' targets and breakers. The
// gateway sets it as a telemetry source, so these series are read at
// scrape time and the request path pays nothing for them.
func (r *Registry) Report(e *telemetry.Emitter) {
	r.mu.Lock()
	live := r.live
	r.mu.Unlock()
	now := time.Now()
	for _, s := range live {
		for _, t := range s.targets {
			e.Emit(telemetry.UpstreamTargetAvailable, b2f(t.available(now.UnixNano())), s.name, t.URL)
			e.Emit(telemetry.UpstreamTargetActiveHealthy, b2f(t.ActiveHealthy()), s.name, t.URL)
			e.Emit(telemetry.UpstreamTargetEjected, b2f(t.ejected(now.UnixNano())), s.name, t.URL)
			e.Emit(telemetry.UpstreamTargetInFlight, float64(t.Inflight()), s.name, t.URL)
			if b := t.breaker.Load(); b != nil {
				e.Emit(telemetry.UpstreamBreakerState, float64(b.State(now)), s.name, t.URL)
			}
		}
		if s.breaker != nil {
			e.Emit(telemetry.UpstreamBreakerState, float64(s.breaker.State(now)), s.name, "")
		}
		for st := BreakerClosed; st <= BreakerHalfOpen; st++ {
			e.Emit(telemetry.UpstreamBreakerTransitions, float64(s.state.transitions[st].Load()), s.name, st.String())
		}
		e.Emit(telemetry.UpstreamRetries, float64(s.state.retries.Load()), s.name)
		e.Emit(telemetry.UpstreamFailedAttempts, float64(s.state.failures.Load()), s.name)
		e.Emit(telemetry.UpstreamEjections, float64(s.state.ejections.Load()), s.name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

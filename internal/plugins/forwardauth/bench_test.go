package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// benchChain builds forward_auth (with a decision cache) and the auth gate
// in front of a handler that does nothing, warms the cache with one call
// for token, and measures requests answered from the cache.
func benchChain(b *testing.B, token string, gate bool, wantPassed int) {
	a := newAuthService(b)
	c, err := authtest.TryConfigure(Registration(), "url: "+a.srv.URL+"/check\n"+identity+"consumer_header: X-Consumer\ncache: {ttl: 1h}\n")
	if err != nil {
		b.Fatal(err)
	}
	if token == "good" { // admitted, named a consumer
		c.Spec.(*Spec).ConsumerHeader = ""
	}
	cs := []pipeline.Configured{c}
	if gate {
		g := authtest.Configure(b, authgate.Registration(), "")
		cs = append(cs, g)
	}
	reg, err := consumer.New(consumers())
	if err != nil {
		b.Fatal(err)
	}
	h, err := pipeline.Chain(cs, pipeline.BuildEnv{Route: "r", Consumers: reg, Shared: pipeline.NewShared(),
		Telemetry: telemetry.New()}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if err != nil {
		b.Fatal(err)
	}
	ex := &pipeline.Exchange{}
	r := httptest.NewRequest("GET", "/orders", nil).WithContext(pipeline.NewContext(b.Context(), ex))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Cookie", "sid=0123456789abcdef")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r) // the one call
	b.ReportAllocs()
	for b.Loop() {
		*ex = pipeline.Exchange{}
		h.ServeHTTP(w, r)
		if ex.Auth.Passed != wantPassed {
			b.Fatalf("got %d passes, want %d", ex.Auth.Passed, wantPassed)
		}
	}
	if n := a.calls.Load(); n != 1 {
		b.Fatalf("got %d calls, want 1", n)
	}
}

// BenchmarkCachedAdmitted is the plugin alone answering from the cache:
// an admission with two identity headers.
func BenchmarkCachedAdmitted(b *testing.B) { benchChain(b, "good", false, 1) }

// BenchmarkCachedAdmittedConsumer adds consumer_header: the cached
// consumer name is looked up among the consumers.
func BenchmarkCachedAdmittedConsumer(b *testing.B) { benchChain(b, "app", false, 1) }

// BenchmarkCachedAdmittedWithGate adds the auth gate, which sets the
// identity headers on the request.
func BenchmarkCachedAdmittedWithGate(b *testing.B) { benchChain(b, "good", true, 1) }

// BenchmarkCachedRefused is a cached 401 recorded for the gate.
func BenchmarkCachedRefused(b *testing.B) { benchChain(b, "bad", false, 0) }

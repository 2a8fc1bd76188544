package ratelimit_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/ratelimit"
	"github.com/portico-gateway/portico/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// consumerRL is a consumer's own rate_limit, as the gateway decodes it.
func consumerRL(t *testing.T, src string) pipeline.Configured {
	t.Helper()
	c := rl(t, src)
	c.Scope = pipeline.ScopeConsumer
	return c
}

// consumerOnly is the rate_limit the gateway adds to a route without one
// when some consumer sets its own: no limits of its own.
func consumerOnly() pipeline.Configured {
	reg := ratelimit.Registration()
	return pipeline.Configured{Reg: &reg, Spec: reg.Spec(), Scope: pipeline.ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(ratelimit.Name)}
}

// TestConsumerLimitAcrossRoutes: a consumer with its own rate_limit has
// one budget across every route, in place of the routes' limits; other
// consumers keep each route's limit; a route without rate_limit still
// limits that consumer.
func TestConsumerLimitAcrossRoutes(t *testing.T) {
	t.Parallel()
	c, shared := newClock(), pipeline.NewShared()
	memory(shared, c)
	routeLimit := "{limits: [{name: per_minute, limit: 5, window: 1m}]}"
	g := start(t, setup{shared: shared,
		routes: []route{
			{"a", []pipeline.Configured{rl(t, routeLimit)}},
			{"b", []pipeline.Configured{rl(t, routeLimit)}},
			{"open", []pipeline.Configured{consumerOnly()}},
		},
		consumers: map[string]pipeline.Configured{
			"gold": consumerRL(t, "{limits: [{name: per_minute, limit: 3, window: 1m}]}"),
		},
	})
	gold := []string{"X-Test-Consumer", "gold"}
	silver := []string{"X-Test-Consumer", "silver"}

	r := do(t, g, "/a", gold...)
	if r.status != http.StatusOK || r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("gold on a: got %d limit %q remaining %q, want 200, 3, 2 (its own limit)",
			r.status, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
	}
	if got := statuses(t, g, 1, "/b", gold...) + " " + statuses(t, g, 1, "/open", gold...); got != "200 200" {
		t.Fatalf("gold on b then open: got %s, want 200 200", got)
	}
	// Three requests on three routes spent gold's one budget.
	for _, path := range []string{"/a", "/b", "/open"} {
		if r := do(t, g, path, gold...); r.status != http.StatusTooManyRequests {
			t.Errorf("gold on %s after 3: got %d, want 429", path, r.status)
		}
	}
	// silver has no limit of its own: each route counts it separately,
	// and the route without rate_limit does not limit it.
	if got := statuses(t, g, 6, "/a", silver...); got != "200 200 200 200 200 429" {
		t.Errorf("silver on a: got %s, want 200 200 200 200 200 429", got)
	}
	if got := statuses(t, g, 5, "/b", silver...); got != "200 200 200 200 200" {
		t.Errorf("silver on b: got %s, want five 200s (b's own count)", got)
	}
	r = do(t, g, "/open", silver...)
	if r.status != http.StatusOK || r.header.Get("RateLimit-Limit") != "" {
		t.Errorf("silver on open: got %d with RateLimit-Limit %q, want 200 without headers", r.status, r.header.Get("RateLimit-Limit"))
	}
	if got := statuses(t, g, 6, "/open"); got != "200 200 200 200 200 200" {
		t.Errorf("unauthenticated on open: got %s, want no limit", got)
	}
	// gold's window passes: its budget is back on every route.
	c.Advance(time.Minute)
	if got := statuses(t, g, 1, "/open", gold...); got != "200" {
		t.Errorf("gold after a minute: got %s, want 200", got)
	}
}

// TestConsumerLimitReplacesRouteSettings: the consumer's own settings
// replace the route's entirely, key and concurrency included.
func TestConsumerLimitReplacesRouteSettings(t *testing.T) {
	t.Parallel()
	c, shared := newClock(), pipeline.NewShared()
	memory(shared, c)
	g := start(t, setup{shared: shared,
		routes: []route{{"a", []pipeline.Configured{rl(t, "{limits: [{limit: 1, window: 1m}], key: ip}")}}},
		consumers: map[string]pipeline.Configured{
			"gold": consumerRL(t, "{limits: [{limit: 100, window: 1m}], key: credential, headers: false}"),
		},
	})
	for _, cred := range []string{"k1", "k2"} {
		r := do(t, g, "/a", "X-Test-Consumer", "gold", "X-Test-Credential", cred)
		if r.status != http.StatusOK || r.header.Get("RateLimit-Limit") != "" {
			t.Errorf("gold with %s: got %d with RateLimit-Limit %q, want 200 without headers (its own settings)",
				cred, r.status, r.header.Get("RateLimit-Limit"))
		}
	}
	if got := statuses(t, g, 2, "/a"); got != "200 429" {
		t.Errorf("others: got %s, want 200 429 (the route's limit per address)", got)
	}
}

// TestConsumerCountersInRedis checks the counter namespace of a
// consumer's own limit in a shared store: consumer:<name>, the same key
// from every route.
func TestConsumerCountersInRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := &config.Store{Redis: &config.Redis{URL: config.Secret(srv.URL()), Timeout: config.Duration(time.Second),
		OnError: "fail_closed", Instances: 1, KeyPrefix: "test:"}}
	g := start(t, setup{store: store,
		routes: []route{
			{"a", []pipeline.Configured{rl(t, "{limits: [{limit: 5, window: 1m}]}")}},
			{"b", []pipeline.Configured{consumerOnly()}},
		},
		consumers: map[string]pipeline.Configured{
			"gold": consumerRL(t, "{limits: [{name: per_minute, limit: 2, window: 1m, algorithm: fixed_window}]}"),
		},
	})
	got := statuses(t, g, 1, "/a", "X-Test-Consumer", "gold") + " " + statuses(t, g, 2, "/b", "X-Test-Consumer", "gold")
	if got != "200 200 429" {
		t.Errorf("gold on a then b: got %s, want 200 200 429", got)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	keys, err := raw.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %s", err)
	}
	want := "{test:rl:consumer:gold:per_minute:consumer=gold}"
	if len(keys) != 1 || keys[0] != want {
		t.Errorf("got keys %q, want [%s]", keys, want)
	}
}

// TestConsumerCountersSurviveReload: a new snapshot decodes the consumer
// settings again, which rebuilds the consumer limiters; the counters stay.
func TestConsumerCountersSurviveReload(t *testing.T) {
	t.Parallel()
	c, shared := newClock(), pipeline.NewShared()
	memory(shared, c)
	gold := map[string]pipeline.Configured{"gold": consumerRL(t, "{limits: [{limit: 2, window: 1m}]}")}
	g1 := start(t, setup{shared: shared, consumers: gold,
		routes: []route{{"a", []pipeline.Configured{consumerOnly()}}}})
	if got := statuses(t, g1, 1, "/a", "X-Test-Consumer", "gold"); got != "200" {
		t.Fatalf("first snapshot: got %s, want 200", got)
	}
	shared.Begin() // a reload: the same limit, decoded again
	g2 := start(t, setup{shared: shared,
		consumers: map[string]pipeline.Configured{"gold": consumerRL(t, "{limits: [{limit: 2, window: 1m}]}")},
		routes:    []route{{"a", []pipeline.Configured{consumerOnly()}}}})
	if got := statuses(t, g2, 2, "/a", "X-Test-Consumer", "gold"); got != "200 429" {
		t.Errorf("after reload: got %s, want 200 429 (the counter kept)", got)
	}
}

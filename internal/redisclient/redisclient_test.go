package redisclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/redistest"
)

func mustNew(t testing.TB, cfg *config.Redis) redis.UniversalClient {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %s", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNewConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     *config.Redis
		ok      bool
		cluster bool
		tls     bool
		pool    int
	}{
		{name: "url", cfg: &config.Redis{URL: "redis://127.0.0.1:1/0"}, ok: true},
		{name: "url with pool size", cfg: &config.Redis{URL: "redis://127.0.0.1:1/0", PoolSize: 7}, ok: true, pool: 7},
		{name: "rediss is tls", cfg: &config.Redis{URL: "rediss://u:p@127.0.0.1:1/0"}, ok: true, tls: true},
		{name: "cluster", cfg: &config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, PoolSize: 3}, ok: true, cluster: true, pool: 3},
		{name: "nil", cfg: nil},
		{name: "none", cfg: &config.Redis{}},
		{name: "both", cfg: &config.Redis{URL: "redis://127.0.0.1:1", Addrs: []string{"127.0.0.1:1"}}},
		{name: "bad url hides password", cfg: &config.Redis{URL: "http://u:hunter2@x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok=%t", err, tt.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q echoes the password", err)
				}
				return
			}
			defer c.Close()
			switch cc := c.(type) {
			case *redis.Client:
				if tt.cluster {
					t.Fatal("got a single-node client, want a cluster client")
				}
				o := cc.Options()
				if !o.ContextTimeoutEnabled || o.MaxRetries > 0 {
					t.Fatalf("got ContextTimeoutEnabled=%t MaxRetries=%d, want true, no retries", o.ContextTimeoutEnabled, o.MaxRetries)
				}
				if got := o.TLSConfig != nil; got != tt.tls {
					t.Fatalf("got TLS %t, want %t", got, tt.tls)
				}
				if tt.pool > 0 && o.PoolSize != tt.pool {
					t.Fatalf("got pool size %d, want %d", o.PoolSize, tt.pool)
				}
			case *redis.ClusterClient:
				if !tt.cluster {
					t.Fatal("got a cluster client, want a single-node client")
				}
				o := cc.Options()
				if !o.ContextTimeoutEnabled || o.MaxRetries > 0 || o.PoolSize != tt.pool {
					t.Fatalf("got ContextTimeoutEnabled=%t MaxRetries=%d PoolSize=%d, want true, no retries, %d",
						o.ContextTimeoutEnabled, o.MaxRetries, o.PoolSize, tt.pool)
				}
			default:
				t.Fatalf("got client type %T", c)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	a := &config.Redis{URL: "redis://u:hunter2@127.0.0.1:1/0", Timeout: config.Duration(time.Second)}
	b := &config.Redis{URL: "redis://u:hunter2@127.0.0.1:1/0", OnError: "fail_closed"}
	c := &config.Redis{URL: "redis://u:hunter2@127.0.0.1:1/1"}
	if Key(a) != Key(b) {
		t.Fatalf("got keys %s and %s for one connection, want equal", Key(a), Key(b))
	}
	if Key(a) == Key(c) {
		t.Fatalf("got key %s for two databases, want different keys", Key(a))
	}
	if strings.Contains(Key(a), "hunter2") {
		t.Fatalf("key %s holds the password", Key(a))
	}
}

func TestClientTalksToServer(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	for _, tt := range []struct {
		name string
		cfg  *config.Redis
	}{
		{"single", &config.Redis{URL: config.Secret(single.URL())}},
		{"cluster", &config.Redis{Addrs: []string{cluster.Addr()}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, tt.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, k := range []string{"a", "b", "c"} {
				if err := c.Set(ctx, k, "v:"+k, time.Minute).Err(); err != nil {
					t.Fatalf("SET %s: %s", k, err)
				}
				if got, err := c.Get(ctx, k).Result(); err != nil || got != "v:"+k {
					t.Fatalf("got GET %s = %q, %v, want %q", k, got, err, "v:"+k)
				}
			}
		})
	}
}

// TestContextDeadlineBoundsCall pauses the server: a call with a 50ms
// context must give up near 50ms (the client honours context deadlines on
// the socket and does not retry).
func TestContextDeadlineBoundsCall(t *testing.T) {
	srv := redistest.Start(t)
	c := mustNew(t, &config.Redis{URL: config.Secret(srv.URL())})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %s", err)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	if err := raw.Do(context.Background(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Get(ctx, "k").Err()
	if took := time.Since(start); err == nil || took > 500*time.Millisecond {
		t.Fatalf("got %v after %s from a paused server, want an error near 50ms", err, took)
	}
}

// TestDeadServerFailsFast stops the server: a command fails at once (one
// dial, no retries) instead of waiting.
func TestDeadServerFailsFast(t *testing.T) {
	srv := redistest.Start(t)
	c := mustNew(t, &config.Redis{URL: config.Secret(srv.URL())})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %s", err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Get(ctx, "k").Err()
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("got %v after %s from a stopped server, want an error well under 1s", err, took)
	}
}

// TestSharedClient: every feature asking for one store gets one client,
// and it is closed once a config no longer names the store.
func TestSharedClient(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Redis{URL: config.Secret(srv.URL())}
	shared := pipeline.NewShared()
	shared.Begin()
	a, err := Shared(shared, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Shared(shared, &config.Redis{URL: config.Secret(srv.URL())})
	if a != b {
		t.Fatal("two users of one store got two clients")
	}
	if err := a.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping: %s", err)
	}
	shared.Begin() // a config without the store
	shared.Retire()
	if err := a.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("after the store left the config: ping = %v, want redis.ErrClosed", err)
	}
	if _, err := Shared(shared, &config.Redis{}); err == nil {
		t.Fatal("a store with neither url nor addrs gave a client")
	}
}

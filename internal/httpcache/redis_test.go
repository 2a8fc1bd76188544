package httpcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/redisclient"
	"github.com/portico-gateway/portico/internal/redistest"
)

// redisClientFor returns a Portico client (internal/redisclient) for srv,
// a Cluster client when cluster is set.
func redisClientFor(t testing.TB, srv *redistest.Server, cluster bool) redis.UniversalClient {
	t.Helper()
	cfg := &config.Redis{URL: config.Secret(srv.URL())}
	if cluster {
		cfg = &config.Redis{Addrs: []string{srv.Addr()}}
	}
	c, err := redisclient.New(cfg)
	if err != nil {
		t.Fatalf("redisclient.New: %s", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func rawRedis(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisNodes are the deployments every store test runs on.
var redisNodes = []struct {
	name    string
	cluster bool
}{{"single", false}, {"cluster", true}}

func startRedis(t testing.TB, cluster bool) *redistest.Server {
	t.Helper()
	if cluster {
		return redistest.StartCluster(t)
	}
	return redistest.Start(t)
}

// testTimeout is generous: the tests check behaviour, not latency, except
// where they set their own.
const testTimeout = 5 * time.Second

// pollRedis calls f until it returns nil, and fails the test with f's last
// error after testTimeout. It is the one poll of these tests, for what only
// the redis-server process knows: nothing there signals the test, so it asks.
func pollRedis(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", testTimeout, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestRedisRoundTrip(t *testing.T) {
	for _, node := range redisNodes {
		t.Run(node.name, func(t *testing.T) {
			srv := startRedis(t, node.cluster)
			raw := rawRedis(t, srv)
			ctx := context.Background()
			for _, compress := range []bool{false, true} {
				s := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout, Compress: compress})
				key := fmt.Sprintf("r\n/api/products?category=books\nexample.com\ncompress=%t", compress)
				want := codecEntry4K()
				if err := s.Set(ctx, key, want, time.Minute); err != nil {
					t.Fatalf("Set: %s", err)
				}
				got, err := s.Get(ctx, key)
				if err != nil {
					t.Fatalf("Get: %s", err)
				}
				if d := entryDiff(got, want); d != "" {
					t.Fatalf("compress=%t: got %s", compress, d)
				}
				b, err := raw.Get(ctx, DefaultRedisKeyPrefix+key).Bytes()
				if err != nil {
					t.Fatalf("raw GET under the default prefix: %s", err)
				}
				if gotZ := b[1]&codecFlagZstd != 0; gotZ != compress {
					t.Fatalf("got compressed=%t in Redis (%d bytes), want %t", gotZ, len(b), compress)
				}
				t.Logf("compress=%t: %d bytes in Redis", compress, len(b))
			}
			s := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout})
			if _, err := s.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v for an absent key, want ErrNotFound", err)
			}
		})
	}
}

func TestRedisSetTTL(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawRedis(t, srv)
	s := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout, KeyPrefix: "t:"})
	ctx := context.Background()
	e := &Entry{Status: 200, Body: []byte("short-lived")}
	if err := s.Set(ctx, "k", e, 150*time.Millisecond); err != nil {
		t.Fatalf("Set: %s", err)
	}
	if pttl, err := raw.PTTL(ctx, "t:k").Result(); err != nil || pttl <= 0 || pttl > 150*time.Millisecond {
		t.Fatalf("got PTTL %s, %v, want (0, 150ms]", pttl, err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get right after Set: %s", err)
	}
	// Redis expires the key by its own clock, which no fake clock can
	// stand in for, and tells no client when.
	pollRedis(t, func() error {
		_, err := s.Get(ctx, "k")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatalf("Get: %s", err)
		}
		return errors.New("entry still there after a 150ms ttl")
	})
	// ttl <= 0 stores nothing; under a millisecond stores for one.
	if err := s.Set(ctx, "zero", e, 0); err != nil {
		t.Fatalf("Set ttl 0: %s", err)
	}
	if n, _ := raw.Exists(ctx, "t:zero").Result(); n != 0 {
		t.Fatal("got an entry stored with ttl 0, want none")
	}
	if err := s.Set(ctx, "tiny", e, time.Microsecond); err != nil {
		t.Fatalf("Set ttl 1µs: %s", err)
	}
}

func TestRedisDelete(t *testing.T) {
	for _, node := range redisNodes {
		t.Run(node.name, func(t *testing.T) {
			srv := startRedis(t, node.cluster)
			s := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout})
			ctx := context.Background()
			keys := []string{"a", "b", "c", "d", "e"} // several Cluster slots
			for _, k := range keys {
				if err := s.Set(ctx, k, &Entry{Status: 200, Body: []byte(k)}, time.Minute); err != nil {
					t.Fatalf("Set %s: %s", k, err)
				}
			}
			if err := s.Delete(ctx, "a", "c", "e", "missing"); err != nil {
				t.Fatalf("Delete: %s", err)
			}
			if err := s.Delete(ctx, "d"); err != nil {
				t.Fatalf("Delete one: %s", err)
			}
			if err := s.Delete(ctx); err != nil {
				t.Fatalf("Delete none: %s", err)
			}
			if got, want := presentKeys(t, s, keys), []string{"b"}; !slices.Equal(got, want) {
				t.Fatalf("got keys %q left, want %q", got, want)
			}
		})
	}
}

// presentKeys returns which of keys s has.
func presentKeys(t testing.TB, s Store, keys []string) []string {
	t.Helper()
	var got []string
	for _, k := range keys {
		_, err := s.Get(context.Background(), k)
		switch {
		case err == nil:
			got = append(got, k)
		case !errors.Is(err, ErrNotFound):
			t.Fatalf("Get %q: %s", k, err)
		}
	}
	return got
}

func TestRedisDeletePrefix(t *testing.T) {
	for _, node := range redisNodes {
		t.Run(node.name, func(t *testing.T) {
			srv := startRedis(t, node.cluster)
			// The prefix has glob characters too.
			s := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout, KeyPrefix: "p[1]*:"})
			ctx := context.Background()
			keys := []string{
				"r\n/a*b?q=1\nh", "r\n/aXb?q=1\nh", "r\n/a*bc?\nh",
				"r\n/[x]?\nh", "r\n/x?\nh", "r\n/[x]y?\nh",
				"r\n/q?x=1\nh", "r\n/qq?\nh",
				`r` + "\n" + `/back\slash?` + "\nh", `r` + "\n" + `/backXslash?` + "\nh",
				"r2\n/a*b?\nh", "rr\n/a*b?\nh",
			}
			for _, k := range keys {
				if err := s.Set(ctx, k, &Entry{Status: 200}, time.Minute); err != nil {
					t.Fatalf("Set %q: %s", k, err)
				}
			}
			// An entry under another prefix that the store's glob would
			// match unescaped ("p1x:" matches "p[1]*:").
			other := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout, KeyPrefix: "p1x:"})
			if err := other.Set(ctx, "r\n/a*b?\nh", &Entry{Status: 200}, time.Minute); err != nil {
				t.Fatalf("Set other: %s", err)
			}
			steps := []struct {
				prefix  string
				removed int
				left    []string
			}{
				{"r\n/a*b", 2, []string{"r\n/aXb?q=1\nh", "r\n/[x]?\nh", "r\n/x?\nh", "r\n/[x]y?\nh", "r\n/q?x=1\nh", "r\n/qq?\nh", "r\n/back\\slash?\nh", "r\n/backXslash?\nh", "r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"r\n/[x]?", 1, []string{"r\n/aXb?q=1\nh", "r\n/x?\nh", "r\n/[x]y?\nh", "r\n/q?x=1\nh", "r\n/qq?\nh", "r\n/back\\slash?\nh", "r\n/backXslash?\nh", "r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"r\n/q?", 1, []string{"r\n/aXb?q=1\nh", "r\n/x?\nh", "r\n/[x]y?\nh", "r\n/qq?\nh", "r\n/back\\slash?\nh", "r\n/backXslash?\nh", "r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"r\n/back\\", 1, []string{"r\n/aXb?q=1\nh", "r\n/x?\nh", "r\n/[x]y?\nh", "r\n/qq?\nh", "r\n/backXslash?\nh", "r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"nothing", 0, []string{"r\n/aXb?q=1\nh", "r\n/x?\nh", "r\n/[x]y?\nh", "r\n/qq?\nh", "r\n/backXslash?\nh", "r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"r\n", 5, []string{"r2\n/a*b?\nh", "rr\n/a*b?\nh"}},
				{"", 2, nil},
			}
			for _, st := range steps {
				n, err := s.DeletePrefix(ctx, st.prefix)
				if err != nil {
					t.Fatalf("DeletePrefix(%q): %s", st.prefix, err)
				}
				if n != st.removed {
					t.Fatalf("DeletePrefix(%q) removed %d, want %d", st.prefix, n, st.removed)
				}
				if got := presentKeys(t, s, keys); !slices.Equal(got, st.left) {
					t.Fatalf("after DeletePrefix(%q): got keys %q, want %q", st.prefix, got, st.left)
				}
			}
			if _, err := other.Get(ctx, "r\n/a*b?\nh"); err != nil {
				t.Fatalf("got %v for the other prefix's entry, want it kept", err)
			}
		})
	}
}

// TestRedisDeletePrefixManyKeys purges more keys than one SCAN batch.
func TestRedisDeletePrefixManyKeys(t *testing.T) {
	for _, node := range redisNodes {
		t.Run(node.name, func(t *testing.T) {
			srv := startRedis(t, node.cluster)
			raw := rawRedis(t, srv)
			s := NewRedis(redisClientFor(t, srv, node.cluster), RedisOptions{Timeout: testTimeout})
			ctx := context.Background()
			const n = 2500
			b := EncodeEntry(&Entry{Status: 200, Body: []byte("x")})
			pipe := raw.Pipeline()
			for i := range n {
				pipe.Set(ctx, fmt.Sprintf("%sroute\n/item/%d?\nh", DefaultRedisKeyPrefix, i), b, time.Minute)
				pipe.Set(ctx, fmt.Sprintf("%sother\n/item/%d?\nh", DefaultRedisKeyPrefix, i), b, time.Minute)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("fill: %s", err)
			}
			got, err := s.DeletePrefix(ctx, "route\n")
			if err != nil || got != n {
				t.Fatalf("got %d removed, %v, want %d", got, err, n)
			}
			if size, _ := raw.DBSize(ctx).Result(); size != n {
				t.Fatalf("got %d keys left, want %d (the other route)", size, n)
			}
		})
	}
}

// TestRedisTwoStoresShareEntries is two gateway instances on one Redis:
// what one stores, the other finds, and one's purge is seen by both.
func TestRedisTwoStoresShareEntries(t *testing.T) {
	srv := redistest.Start(t)
	a := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout, Compress: true})
	b := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout})
	ctx := context.Background()
	want := codecEntry4K()
	if err := a.Set(ctx, "shared", want, time.Minute); err != nil {
		t.Fatalf("Set on a: %s", err)
	}
	got, err := b.Get(ctx, "shared")
	if err != nil {
		t.Fatalf("Get on b: %s", err)
	}
	if d := entryDiff(got, want); d != "" {
		t.Fatalf("b got %s", d)
	}
	if n, err := b.DeletePrefix(ctx, "sha"); err != nil || n != 1 {
		t.Fatalf("got %d, %v purging on b, want 1", n, err)
	}
	if _, err := a.Get(ctx, "shared"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v on a after b purged, want ErrNotFound", err)
	}
}

// TestRedisDownReturnsErrorsFast stops the server: every call fails
// promptly (the caller serves a miss) instead of hanging.
func TestRedisDownReturnsErrorsFast(t *testing.T) {
	srv := redistest.Start(t)
	s := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	e := &Entry{Status: 200, Body: []byte("x")}
	if err := s.Set(ctx, "k", e, time.Minute); err != nil {
		t.Fatalf("Set: %s", err)
	}
	srv.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"set", func() error { return s.Set(ctx, "k", e, time.Minute) }},
		{"delete", func() error { return s.Delete(ctx, "k") }},
		{"delete prefix", func() error { _, err := s.DeletePrefix(ctx, ""); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: got %v from a stopped Redis, want a store error", c.name, err)
		}
		if took > time.Second {
			t.Fatalf("%s: took %s, want well under 1s", c.name, took)
		}
	}
	srv.Restart()
	// The client's pool finds out by itself that the server is back.
	pollRedis(t, func() error {
		if err := s.Set(ctx, "k", e, time.Minute); err != nil {
			return fmt.Errorf("Set still failing after Redis came back: %w", err)
		}
		return nil
	})
}

// TestRedisHungServerBoundedByTimeout pauses the server (a hung Redis):
// Get and Set give up after about Timeout.
func TestRedisHungServerBoundedByTimeout(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawRedis(t, srv)
	s := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	e := &Entry{Status: 200, Body: []byte("x")}
	if err := s.Set(ctx, "k", e, time.Minute); err != nil {
		t.Fatalf("Set: %s", err)
	}
	if err := raw.Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"set", func() error { return s.Set(ctx, "k2", e, time.Minute) }},
	} {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if err == nil || took > 600*time.Millisecond {
			t.Fatalf("%s: got %v after %s from a paused Redis, want an error near 100ms", c.name, err, took)
		}
	}
}

func TestRedisCorruptValueIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawRedis(t, srv)
	s := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout})
	ctx := context.Background()
	good := EncodeEntryCompressed(codecEntry4K())
	for name, v := range map[string][]byte{
		"garbage":   []byte("not an entry"),
		"empty":     {},
		"truncated": good[:len(good)/2],
		"zstd flag": append([]byte{codecVersion, codecFlagZstd}, "junk"...),
	} {
		if err := raw.Set(ctx, DefaultRedisKeyPrefix+name, v, time.Minute).Err(); err != nil {
			t.Fatalf("raw SET: %s", err)
		}
		e, err := s.Get(ctx, name)
		if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, errCodecCorrupt) {
			t.Fatalf("%s: got %v, %v, want a corrupt-entry error", name, e, err)
		}
	}
}

func TestRedisRefusesLargeEntries(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawRedis(t, srv)
	s := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout, MaxEntryBytes: 1000})
	ctx := context.Background()
	big := &Entry{Status: 200, Header: http.Header{"X": {"y"}}, Body: make([]byte, 2000)}
	for i := range big.Body {
		big.Body[i] = byte(i * 131)
	}
	if err := s.Set(ctx, "big", big, time.Minute); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if n, _ := raw.Exists(ctx, DefaultRedisKeyPrefix+"big").Result(); n != 0 {
		t.Fatal("got the large entry stored, want it refused")
	}
	// Compressed under the bound, it is stored.
	zeros := &Entry{Status: 200, Body: make([]byte, 2000)}
	sz := NewRedis(redisClientFor(t, srv, false), RedisOptions{Timeout: testTimeout, MaxEntryBytes: 1000, Compress: true})
	if err := sz.Set(ctx, "zeros", zeros, time.Minute); err != nil {
		t.Fatalf("Set compressible: %s", err)
	}
}

func TestRedisGlobEscape(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"r\n/path?q=1\n", "r\n/path\\?q=1\n"},
		{"a*b", `a\*b`},
		{"[x]", `\[x\]`},
		{`back\slash`, `back\\slash`},
		{"no-special", "no-special"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redisGlobEscape(tt.in); got != tt.want {
			t.Errorf("redisGlobEscape(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkRedis4K(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	for _, compress := range []bool{false, true} {
		s := NewRedis(redisClientFor(b, srv, false), RedisOptions{Timeout: testTimeout, Compress: compress})
		e := codecEntry4K()
		if err := s.Set(ctx, "bench", e, time.Minute); err != nil {
			b.Fatalf("Set: %s", err)
		}
		b.Run(fmt.Sprintf("get/compress=%t", compress), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, "bench"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("set/compress=%t", compress), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Set(ctx, "bench", e, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

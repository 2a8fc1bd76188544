package limiter

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/redistest"
)

// benchRule never denies in a benchmark's lifetime, so every call writes.
var benchRule = Rule{Limit: 1 << 40, Window: time.Second}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "rl:route:orders:per_second:10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	return keys
}

func BenchmarkMemoryAllow(b *testing.B) {
	for _, alg := range []Algorithm{GCRA, SlidingWindow, FixedWindow} {
		r := benchRule
		r.Algorithm = alg
		b.Run(alg.String()+"/single-key", func(b *testing.B) {
			m := NewMemory(MemoryOptions{SweepInterval: -1})
			defer m.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Allow(ctx, "k", r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.String()+"/many-keys-parallel", func(b *testing.B) {
			m := NewMemory(MemoryOptions{SweepInterval: -1})
			defer m.Close()
			keys := benchKeys(1 << 16)
			var next atomic.Uint64
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					i++
					if _, err := m.Allow(ctx, keys[i&(1<<16-1)], r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("gcra/single-key-parallel", func(b *testing.B) {
		m := NewMemory(MemoryOptions{SweepInterval: -1})
		defer m.Close()
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Allow(ctx, "k", benchRule); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.Start(b)
	rl := newTestRedis(b, srv.URL(), time.Second)
	ctx := context.Background()
	for _, alg := range []Algorithm{GCRA, SlidingWindow, FixedWindow} {
		r := benchRule
		r.Algorithm = alg
		b.Run(alg.String()+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rl.Allow(ctx, "bench", r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.String()+"/parallel", func(b *testing.B) {
			keys := benchKeys(1024)
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(101)
				for pb.Next() {
					i++
					if _, err := rl.Allow(ctx, keys[i&1023], r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRedisPipeline compares 64 concurrent callers against one real
// Redis with automatic pipelining (the default) and with one round trip
// per decision.
func BenchmarkRedisPipeline(b *testing.B) {
	srv := redistest.Start(b)
	const callers = 64
	for _, mode := range []struct {
		name string
		off  bool
	}{{"pipelined", false}, {"off", true}} {
		b.Run(mode.name, func(b *testing.B) {
			rl, err := NewRedis(RedisOptions{URL: srv.URL(), Timeout: time.Second, KeyPrefix: "bench:", NoPipeline: mode.off})
			if err != nil {
				b.Fatal(err)
			}
			defer rl.Close()
			keys := benchKeys(1024)
			var next atomic.Uint64
			ctx := context.Background()
			b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(101)
				for pb.Next() {
					i++
					if _, err := rl.Allow(ctx, keys[i&1023], benchRule); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
			if st := rl.Stats(); b.N > 0 && !mode.off {
				b.ReportMetric(float64(st.Direct+st.Pipelines)/float64(b.N), "roundtrips/op")
			}
		})
	}
}

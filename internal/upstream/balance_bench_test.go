package upstream

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// balBenchTargets returns n targets with latencies and weights that differ
// (weighted) or not, and a few requests in flight.
func balBenchTargets(n int, weighted bool) ([]*Target, []int) {
	ts := balTargets(n)
	ws := balOnes(n)
	for i, t := range ts {
		t.observeLatency(time.Duration(1+i%5) * time.Millisecond)
		for range i % 3 {
			t.Begin()
		}
		if weighted {
			ws[i] = 1 + i%4
		}
	}
	return ts, ws
}

func BenchmarkBalancerPick(b *testing.B) {
	for _, algo := range []string{"round_robin", "least_request", "ewma", "consistent_hash"} {
		for _, n := range []int{3, 100} {
			for _, weighted := range []bool{false, true} {
				name := algo + "/" + strconv.Itoa(n)
				if weighted {
					name += "/weighted"
				}
				b.Run(name, func(b *testing.B) {
					ts, ws := balBenchTargets(n, weighted)
					bal := newBalancer(balConfig(algo), ts, ws)
					b.ReportAllocs()
					b.ResetTimer()
					for k := range b.N {
						f := filter{targets: ts, now: balNow}
						req := PickRequest{Key: uint64(k) * 0x9e3779b97f4a7c15, HasKey: true}
						if bal.pick(&req, &f) < 0 {
							b.Fatal("got -1")
						}
					}
				})
			}
		}
	}
}

// BenchmarkBalancerPickRetry picks for a retry: one target already tried.
func BenchmarkBalancerPickRetry(b *testing.B) {
	for _, algo := range []string{"round_robin", "least_request", "ewma", "consistent_hash"} {
		b.Run(algo, func(b *testing.B) {
			ts, ws := balBenchTargets(3, false)
			bal := newBalancer(balConfig(algo), ts, ws)
			var tried Tried
			tried.Add(0)
			b.ReportAllocs()
			for k := 0; b.Loop(); k++ {
				f := filter{targets: ts, now: balNow, tried: &tried, skipTried: true}
				req := PickRequest{Key: uint64(k) * 0x9e3779b97f4a7c15, HasKey: true, Tried: &tried}
				if bal.pick(&req, &f) <= 0 {
					b.Fatal("got -1 or the tried position")
				}
			}
		})
	}
}

func BenchmarkBalancerPickParallel(b *testing.B) {
	for _, algo := range []string{"round_robin", "least_request", "ewma", "consistent_hash"} {
		b.Run(algo, func(b *testing.B) {
			ts, ws := balBenchTargets(3, true)
			bal := newBalancer(balConfig(algo), ts, ws)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := uint64(0)
				for pb.Next() {
					k++
					f := filter{targets: ts, now: balNow}
					req := PickRequest{Key: k * 0x9e3779b97f4a7c15, HasKey: true}
					if bal.pick(&req, &f) < 0 {
						b.Fatal("got -1")
					}
				}
			})
		})
	}
}

func BenchmarkHashKey(b *testing.B) {
	tests := []struct {
		name   string
		lb     config.LoadBalancer
		header http.Header
	}{
		{"client_ip", balConfig("consistent_hash"), http.Header{}},
		{"header", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "header", HashKey: "x-user-id", LoadFactor: 1.25},
			http.Header{"X-User-Id": {"3f2b8c1e-5a47-4d0e-9c1b-7e6a2d9f4b10"}}},
		{"cookie", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "cookie", HashKey: "sid", LoadFactor: 1.25},
			http.Header{"Cookie": {"theme=dark; sid=3f2b8c1e5a474d0e9c1b7e6a2d9f4b10; lang=en"}}},
	}
	ip := netip.MustParseAddr("2001:db8::17")
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			bal := newBalancer(tt.lb, balTargets(3), balOnes(3))
			r := &http.Request{Method: http.MethodGet, Header: tt.header}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := bal.hashKey(r, ip); !ok {
					b.Fatal("got no key")
				}
			}
		})
	}
}

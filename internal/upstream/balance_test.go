package upstream

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// balNow is the clock of the balancer tests, in unix nanoseconds.
var balNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

// balTargets returns n targets http://10.0.0.1:80 ... with no load.
func balTargets(n int) []*Target {
	ts := make([]*Target, n)
	for i := range ts {
		host := "10.0.0." + strconv.Itoa(i+1) + ":80"
		ts[i] = newTarget("http://"+host, host, host)
	}
	return ts
}

func balOnes(n int) []int {
	ws := make([]int, n)
	for i := range ws {
		ws[i] = 1
	}
	return ws
}

func balConfig(algo string) config.LoadBalancer {
	lb := config.LoadBalancer{Algorithm: algo}
	if algo == "consistent_hash" {
		lb.HashOn, lb.LoadFactor = config.DefaultHashOn, config.DefaultLoadFactor
	}
	return lb
}

// balCount picks n times with no request in flight and counts the picks
// of each position; it fails on -1.
func balCount(t *testing.T, b *balancer, req *PickRequest, f *filter, n int) []int {
	t.Helper()
	counts := make([]int, len(b.targets))
	for range n {
		i := b.pick(req, f)
		if i < 0 {
			t.Fatalf("pick: got -1, want a position")
		}
		counts[i]++
	}
	return counts
}

// balShares checks that counts split total in proportion to want (zero
// weight: never picked), within ±5% of each expected count.
func balShares(t *testing.T, counts []int, want []int) {
	t.Helper()
	total, sum := 0, 0
	for i := range counts {
		total += counts[i]
		sum += want[i]
	}
	for i, c := range counts {
		exp := float64(total) * float64(want[i]) / float64(sum)
		if math.Abs(float64(c)-exp) > 0.05*exp || (want[i] == 0 && c != 0) {
			t.Errorf("position %d: got %d picks, want %.0f ±5%% (counts %v, weights %v)", i, c, exp, counts, want)
		}
	}
}

func TestBalancerWeightedDistribution(t *testing.T) {
	tests := []struct {
		name    string
		algo    string
		weights []int
	}{
		{"round robin 1:2:7", "round_robin", []int{1, 2, 7}},
		{"round robin equal", "round_robin", []int{1, 1, 1}},
		{"round robin 5:1", "round_robin", []int{5, 1}},
		{"least request idle 1:2:7", "least_request", []int{1, 2, 7}},
		{"least request idle equal", "least_request", []int{2, 2, 2, 2}},
		{"consistent hash without key 1:2:7", "consistent_hash", []int{1, 2, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(len(tt.weights))
			b := newBalancer(balConfig(tt.algo), ts, tt.weights)
			counts := balCount(t, b, &PickRequest{}, &filter{targets: ts, now: balNow}, 10000)
			balShares(t, counts, tt.weights)
		})
	}
}

func TestRoundRobinScheduleMatchesSmooth(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
	}{
		{"3:1", []int{3, 1}},
		{"1:2:7", []int{1, 2, 7}},
		{"common divisor", []int{100, 200, 700}},
		{"primes", []int{13, 7, 5, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(len(tt.weights))
			f := &filter{targets: ts, now: balNow}
			fast := newBalancer(balConfig("round_robin"), ts, tt.weights)
			if fast.schedule == nil {
				t.Fatal("got no schedule, want one")
			}
			locked := newBalancer(balConfig("round_robin"), ts, tt.weights)
			locked.schedule = nil
			for k := range 3 * len(fast.schedule) {
				if got, want := fast.pick(nil, f), locked.pick(nil, f); got != want {
					t.Fatalf("pick %d: got position %d from the schedule, want %d as smooth round robin", k, got, want)
				}
			}
		})
	}
}

func TestRoundRobinScheduleTooLong(t *testing.T) {
	weights := make([]int, 100)
	for i := range weights {
		weights[i] = 1000 - i
	}
	b := newBalancer(balConfig("round_robin"), balTargets(100), weights)
	if b.schedule != nil {
		t.Fatalf("got a schedule of %d picks, want none above %d", len(b.schedule), maxSchedule)
	}
	if got := b.pick(nil, &filter{targets: b.targets, now: balNow}); got != 0 {
		t.Errorf("got position %d, want 0, the heaviest", got)
	}
}

func TestSmoothRoundRobinInterleaves(t *testing.T) {
	ts := balTargets(2)
	b := newBalancer(balConfig("round_robin"), ts, []int{3, 1})
	f := &filter{targets: ts, now: balNow}
	var got []int
	for range 8 {
		got = append(got, b.pick(nil, f))
	}
	want := []int{0, 0, 1, 0, 0, 0, 1, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got sequence %v, want %v", got, want)
		}
	}
}

// balUnavailable makes position i of ts unavailable by one of the means a
// filter knows: tried by the request, passively ejected, actively down.
func balUnavailable(how string, ts []*Target, tried *Tried, i int) {
	switch how {
	case "tried":
		tried.Add(i)
	case "ejected":
		ts[i].health.ejectedUntil.Store(balNow + int64(time.Second))
	case "down":
		ts[i].setActiveHealthy(false)
	}
}

func TestBalancerSkipsUnavailable(t *testing.T) {
	type test struct {
		name    string
		algo    string
		how     string
		weights []int
		skip    []int
		shares  []int // expected shares; nil: only check skipped positions get nothing
	}
	var tests []test
	for _, how := range []string{"tried", "ejected", "down"} {
		tests = append(tests,
			test{"round robin equal " + how, "round_robin", how, []int{1, 1, 1, 1}, []int{1}, []int{1, 0, 1, 1}},
			test{"round robin weighted " + how, "round_robin", how, []int{1, 2, 7}, []int{2}, []int{1, 2, 0}},
			test{"least request equal " + how, "least_request", how, []int{1, 1, 1, 1}, []int{0, 2}, []int{0, 1, 0, 1}},
			test{"least request weighted " + how, "least_request", how, []int{1, 2, 7}, []int{1}, []int{1, 0, 7}},
			test{"ewma " + how, "ewma", how, []int{1, 1, 1, 1, 1}, []int{0, 3}, nil},
			test{"ewma all but one " + how, "ewma", how, []int{1, 1, 1, 1, 1}, []int{0, 1, 2, 4}, []int{0, 0, 0, 1, 0}},
			test{"consistent hash no key " + how, "consistent_hash", how, []int{1, 1, 1}, []int{2}, []int{1, 1, 0}},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(len(tt.weights))
			var tried Tried
			for _, i := range tt.skip {
				balUnavailable(tt.how, ts, &tried, i)
			}
			b := newBalancer(balConfig(tt.algo), ts, tt.weights)
			f := &filter{targets: ts, now: balNow, tried: &tried, skipTried: true}
			counts := balCount(t, b, &PickRequest{Tried: &tried}, f, 10000)
			for _, i := range tt.skip {
				if counts[i] != 0 {
					t.Errorf("position %d: got %d picks, want 0 (counts %v)", i, counts[i], counts)
				}
			}
			if tt.shares != nil {
				balShares(t, counts, tt.shares)
			}
		})
	}
}

func TestBalancerManyTargets(t *testing.T) {
	tests := []struct {
		name string
		algo string
		n    int
		idle []int // with least_request: the only idle positions; otherwise the only available ones
	}{
		{"least request ties past 64", "least_request", 130, []int{70, 129}},
		{"round robin past the stack bit set", "round_robin", bitsOnStack + 2, []int{3, bitsOnStack + 1}},
		{"ewma draws among few", "ewma", 40, []int{5, 38}},
		{"consistent hash past 64", "consistent_hash", 200, []int{66, 199}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(tt.n)
			keep := make(map[int]bool)
			for _, i := range tt.idle {
				keep[i] = true
			}
			for i, tg := range ts {
				switch {
				case keep[i]:
				case tt.algo == "least_request":
					tg.Begin()
				default:
					tg.setActiveHealthy(false)
				}
			}
			b := newBalancer(balConfig(tt.algo), ts, balOnes(tt.n))
			counts := balCount(t, b, &PickRequest{}, &filter{targets: ts, now: balNow}, 400)
			want := make([]int, tt.n)
			for _, i := range tt.idle {
				want[i] = 1
			}
			if tt.algo == "ewma" {
				// Random pairs: check only that no other position is picked.
				for i, c := range counts {
					if c > 0 && !keep[i] {
						t.Fatalf("position %d: got %d picks, want 0", i, c)
					}
				}
				return
			}
			balShares(t, counts, want)
		})
	}
}

func TestEWMAManyTargets(t *testing.T) {
	// Above ewmaScan targets, pairs are drawn at random: the slowest loses
	// every pair it is in, the fastest wins every one.
	ts := balTargets(20)
	for i, tg := range ts {
		tg.observeLatency(time.Duration(i+1) * time.Millisecond)
	}
	b := newBalancer(balConfig("ewma"), ts, balOnes(20))
	counts := balCount(t, b, nil, &filter{targets: ts, now: balNow}, 2000)
	if counts[19] != 0 {
		t.Errorf("got %d picks of the slowest target, want 0", counts[19])
	}
	if counts[0] <= counts[10] {
		t.Errorf("got %d picks of the fastest target, %d of a middle one, want more for the fastest", counts[0], counts[10])
	}
}

func TestConsistentHashSkipsUnavailable(t *testing.T) {
	ts := balTargets(3)
	b := newBalancer(balConfig("consistent_hash"), ts, balOnes(3))
	f := &filter{targets: ts, now: balNow}
	for k := range 200 {
		key := hash64(strconv.Itoa(k))
		home := b.pick(&PickRequest{Key: key, HasKey: true}, f)
		var tried Tried
		tried.Add(home)
		ft := &filter{targets: ts, now: balNow, tried: &tried, skipTried: true}
		got := b.pick(&PickRequest{Key: key, HasKey: true, Tried: &tried}, ft)
		if want := balNextOnRing(b, key, home); got != want {
			t.Fatalf("key %d: got position %d after %d was tried, want %d, the next on the ring", k, got, home, want)
		}
	}
}

// balNextOnRing returns the first target clockwise from key other than
// not.
func balNextOnRing(b *balancer, key uint64, not int) int {
	pts := b.hash.points
	start := 0
	for start < len(pts) && pts[start] < key {
		start++
	}
	for k := range pts {
		if o := int(b.hash.owners[(start+k)%len(pts)]); o != not {
			return o
		}
	}
	return -1
}

func TestBalancerNothingPasses(t *testing.T) {
	for _, algo := range []string{"round_robin", "least_request", "ewma", "consistent_hash"} {
		for _, weights := range [][]int{nil, {1}, {1, 1, 1}, {1, 2, 7}} {
			t.Run(algo+" "+strconv.Itoa(len(weights)), func(t *testing.T) {
				t.Parallel()
				ts := balTargets(len(weights))
				var tried Tried
				for i := range ts {
					balUnavailable([]string{"tried", "ejected", "down"}[i%3], ts, &tried, i)
				}
				b := newBalancer(balConfig(algo), ts, weights)
				f := &filter{targets: ts, now: balNow, tried: &tried, skipTried: true}
				for _, req := range []*PickRequest{{Tried: &tried}, {Key: 42, HasKey: true, Tried: &tried}} {
					if got := b.pick(req, f); got != -1 {
						t.Errorf("got position %d, want -1", got)
					}
				}
			})
		}
	}
}

func TestEjectionEnds(t *testing.T) {
	ts := balTargets(2)
	ts[0].health.ejectedUntil.Store(balNow)
	b := newBalancer(balConfig("round_robin"), ts, balOnes(2))
	counts := balCount(t, b, nil, &filter{targets: ts, now: balNow}, 100)
	if counts[0] != 50 {
		t.Errorf("got %d picks of a target whose ejection ended at now, want 50", counts[0])
	}
}

func TestLeastRequestPrefersLeastLoaded(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inflight []int
		want     int
	}{
		{"fewest wins", []int{1, 1, 1}, []int{3, 1, 2}, 1},
		{"idle wins", []int{1, 1, 1, 1}, []int{5, 5, 0, 5}, 2},
		{"relative to weight", []int{1, 1, 4}, []int{2, 2, 4}, 2},
		{"heavier but overloaded", []int{1, 4}, []int{1, 5}, 0},
		{"100 targets", balOnes(100), balAllBut(100, 57), 57},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(len(tt.weights))
			for i, n := range tt.inflight {
				for range n {
					ts[i].Begin()
				}
			}
			b := newBalancer(balConfig("least_request"), ts, tt.weights)
			f := &filter{targets: ts, now: balNow}
			for range 10 {
				if got := b.pick(nil, f); got != tt.want {
					t.Fatalf("got position %d, want %d", got, tt.want)
				}
			}
		})
	}
}

// balAllBut returns n in-flight counts of 1 but a 0 at position idle.
func balAllBut(n, idle int) []int {
	in := balOnes(n)
	in[idle] = 0
	return in
}

func TestLeastRequestFollowsLoad(t *testing.T) {
	// Picks that stay in flight spread so that loads stay level.
	ts := balTargets(3)
	b := newBalancer(balConfig("least_request"), ts, []int{1, 1, 2})
	f := &filter{targets: ts, now: balNow}
	for range 40 {
		ts[b.pick(nil, f)].Begin()
	}
	got := []int64{ts[0].Inflight(), ts[1].Inflight(), ts[2].Inflight()}
	if got[0] != 10 || got[1] != 10 || got[2] != 20 {
		t.Errorf("got in-flight %v after 40 picks, want [10 10 20]", got)
	}
}

func TestEWMAPrefersFaster(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		weights  []int
		latency  []time.Duration // 0: no answer yet
		inflight []int
		never    []int // positions never picked
	}{
		{"faster wins", []int{1, 1}, []time.Duration{50 * ms, 10 * ms}, []int{0, 0}, []int{0}},
		{"unknown latency wins", []int{1, 1}, []time.Duration{ms, 0}, []int{0, 3}, []int{0}},
		{"load counts", []int{1, 1}, []time.Duration{10 * ms, 50 * ms}, []int{9, 0}, []int{0}},
		{"weight counts", []int{1, 10}, []time.Duration{10 * ms, 50 * ms}, []int{0, 0}, []int{0}},
		{"slowest of three never", []int{1, 1, 1}, []time.Duration{10 * ms, 30 * ms, 90 * ms}, []int{0, 0, 0}, []int{2}},
		{"idle unknown by load", []int{1, 1}, []time.Duration{0, 0}, []int{2, 1}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(len(tt.weights))
			for i := range ts {
				if tt.latency[i] > 0 {
					ts[i].observeLatency(tt.latency[i])
				}
				for range tt.inflight[i] {
					ts[i].Begin()
				}
			}
			b := newBalancer(balConfig("ewma"), ts, tt.weights)
			counts := balCount(t, b, nil, &filter{targets: ts, now: balNow}, 1000)
			for _, i := range tt.never {
				if counts[i] != 0 {
					t.Errorf("position %d: got %d picks, want 0 (counts %v)", i, counts[i], counts)
				}
			}
		})
	}
}

func TestConsistentHashKeepsKeys(t *testing.T) {
	ts := balTargets(5)
	weights := []int{1, 2, 1, 3, 1}
	b := newBalancer(balConfig("consistent_hash"), ts, weights)
	again := newBalancer(balConfig("consistent_hash"), ts, weights) // the next snapshot
	f := &filter{targets: ts, now: balNow}
	used := make([]int, len(ts))
	for k := range 1000 {
		req := &PickRequest{Key: hash64("user-" + strconv.Itoa(k)), HasKey: true}
		first := b.pick(req, f)
		used[first]++
		for range 3 {
			if got := b.pick(req, f); got != first {
				t.Fatalf("key %d: got position %d, want %d as before", k, got, first)
			}
		}
		if got := again.pick(req, f); got != first {
			t.Fatalf("key %d: got position %d in a rebuilt balancer, want %d", k, got, first)
		}
	}
	for i, n := range used {
		if n == 0 {
			t.Errorf("position %d got no keys of 1000 (counts %v)", i, used)
		}
	}
}

func TestConsistentHashAddingTargetMovesAQuarter(t *testing.T) {
	four := balTargets(4)
	three := four[:3]
	b3 := newBalancer(balConfig("consistent_hash"), three, balOnes(3))
	b4 := newBalancer(balConfig("consistent_hash"), four, balOnes(4))
	f3 := &filter{targets: three, now: balNow}
	f4 := &filter{targets: four, now: balNow}
	const keys = 10000
	moved := 0
	for k := range keys {
		req := &PickRequest{Key: hash64("session-" + strconv.Itoa(k)), HasKey: true}
		before, after := three[b3.pick(req, f3)], four[b4.pick(req, f4)]
		if before == after {
			continue
		}
		moved++
		if after != four[3] {
			t.Fatalf("key %d moved from %s to %s, want only moves to the new target %s", k, before.URL, after.URL, four[3].URL)
		}
	}
	if share := float64(moved) / keys; share < 0.15 || share > 0.35 {
		t.Errorf("got %.1f%% of keys moved, want 15%%..35%%", share*100)
	}
}

func TestConsistentHashBoundedLoad(t *testing.T) {
	ts := balTargets(3)
	b := newBalancer(balConfig("consistent_hash"), ts, balOnes(3))
	f := &filter{targets: ts, now: balNow}
	req := &PickRequest{Key: hash64("hot"), HasKey: true}
	home := b.pick(req, f)

	// Alone, the hot key stays home: inflight+1 = 1 <= ceil(1.25×1/3).
	for range 50 {
		if got := b.pick(req, f); got != home {
			t.Fatalf("got position %d with no load, want home %d", got, home)
		}
	}
	// One request in flight at home: 2 > ceil(1.25×2/3) = 1, so it spills
	// to the next target on the ring.
	ts[home].Begin()
	next := balNextOnRing(b, req.Key, home)
	if got := b.pick(req, f); got != next {
		t.Fatalf("got position %d with home %d loaded, want the next on the ring %d", got, home, next)
	}
	ts[home].End()
	if got := b.pick(req, f); got != home {
		t.Fatalf("got position %d after the load fell, want home %d", got, home)
	}

	// Many hot requests in flight: no target ever exceeds the bound.
	for n := 1; n <= 300; n++ {
		ts[b.pick(req, f)].Begin()
		bound := int64(math.Ceil(config.DefaultLoadFactor * float64(n) / 3))
		for i, tg := range ts {
			if got := tg.Inflight(); got > bound {
				t.Fatalf("after %d picks position %d has %d in flight, want at most %d", n, i, got, bound)
			}
		}
	}
}

func TestConsistentHashRingSize(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		want    int
	}{
		{"points per weight", []int{1, 2, 3}, 6 * ringPointsPerWeight},
		{"capped", []int{1000, 1000, 1000, 1000}, maxRingPoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBalancer(balConfig("consistent_hash"), balTargets(len(tt.weights)), tt.weights)
			if got := len(b.hash.points); got != tt.want {
				t.Errorf("got %d ring points, want %d", got, tt.want)
			}
		})
	}
}

func TestHashKey(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		name   string
		lb     config.LoadBalancer
		header http.Header
		ip     netip.Addr
		want   string // hashed value; "" means no key
	}{
		{"client ip", balConfig("consistent_hash"), nil, v4, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x07"},
		{"client ip mapped", balConfig("consistent_hash"), nil, netip.MustParseAddr("::ffff:192.0.2.7"), "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x07"},
		{"client ip invalid", balConfig("consistent_hash"), nil, netip.Addr{}, ""},
		{"header", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "header", HashKey: "X-User", LoadFactor: 1.25},
			http.Header{"X-User": {"alice", "bob"}}, v4, "alice"},
		{"header name case", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "header", HashKey: "x-user", LoadFactor: 1.25},
			http.Header{"X-User": {"alice"}}, v4, "alice"},
		{"header missing", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "header", HashKey: "X-User", LoadFactor: 1.25},
			http.Header{"X-Other": {"alice"}}, v4, ""},
		{"header empty", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "header", HashKey: "X-User", LoadFactor: 1.25},
			http.Header{"X-User": {""}}, v4, ""},
		{"cookie", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "cookie", HashKey: "sid", LoadFactor: 1.25},
			http.Header{"Cookie": {"theme=dark; sid=abc123"}}, v4, "abc123"},
		{"cookie missing", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "cookie", HashKey: "sid", LoadFactor: 1.25},
			http.Header{"Cookie": {"theme=dark"}}, v4, ""},
		{"cookie empty", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "cookie", HashKey: "sid", LoadFactor: 1.25},
			http.Header{"Cookie": {"sid="}}, v4, ""},
		{"no cookie header", config.LoadBalancer{Algorithm: "consistent_hash", HashOn: "cookie", HashKey: "sid", LoadFactor: 1.25},
			nil, v4, ""},
		{"not consistent hash", balConfig("round_robin"), http.Header{"X-User": {"alice"}}, v4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(2)
			b := newBalancer(tt.lb, ts, balOnes(2))
			r := &http.Request{Method: http.MethodGet, Header: tt.header}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			key, ok := b.hashKey(r, tt.ip)
			if tt.want == "" {
				if ok {
					t.Fatalf("got key %#x, want none", key)
				}
				return
			}
			if !ok {
				t.Fatalf("got no key, want the hash of %q", tt.want)
			}
			if want := hash64(tt.want); key != want {
				t.Errorf("got key %#x, want %#x (the hash of %q)", key, want, tt.want)
			}
		})
	}
}

func TestHashKeyDiffers(t *testing.T) {
	b := newBalancer(balConfig("consistent_hash"), balTargets(2), balOnes(2))
	r := &http.Request{Header: http.Header{}}
	a, _ := b.hashKey(r, netip.MustParseAddr("192.0.2.7"))
	c, _ := b.hashKey(r, netip.MustParseAddr("192.0.2.8"))
	if a == c {
		t.Errorf("got the same key %#x for two client IPs, want different", a)
	}
}

func TestBalancerConcurrentPicks(t *testing.T) {
	for _, algo := range []string{"round_robin", "least_request", "ewma", "consistent_hash"} {
		for _, weights := range [][]int{{1, 1, 1, 1}, {1, 2, 3, 4}} {
			t.Run(algo+" "+strconv.Itoa(weights[1]), func(t *testing.T) {
				t.Parallel()
				ts := balTargets(len(weights))
				ts[1].health.ejectedUntil.Store(balNow + 1)
				b := newBalancer(balConfig(algo), ts, weights)
				var wg sync.WaitGroup
				errs := make(chan string, 8)
				for g := range 8 {
					wg.Go(func() {
						var tried Tried
						if g%2 == 0 {
							tried.Add(2)
						}
						f := &filter{targets: ts, now: balNow, tried: &tried, skipTried: true}
						for k := range 500 {
							req := &PickRequest{Key: hash64(strconv.Itoa(k % 7)), HasKey: k%3 != 0, Tried: &tried}
							i := b.pick(req, f)
							if i < 0 || i == 1 || (g%2 == 0 && i == 2) {
								errs <- algo + ": got position " + strconv.Itoa(i)
								return
							}
							ts[i].Begin()
							ts[i].observeLatency(time.Duration(i+1) * time.Millisecond)
							ts[i].End()
						}
					})
				}
				wg.Wait()
				close(errs)
				for e := range errs {
					t.Error(e)
				}
				for i, tg := range ts {
					if n := tg.Inflight(); n != 0 {
						t.Errorf("position %d: got %d in flight after all ended, want 0", i, n)
					}
				}
			})
		}
	}
}

func FuzzBalancerPick(f *testing.F) {
	f.Add(uint8(0), uint8(3), uint64(0b101), uint64(7), uint64(99), true)
	f.Add(uint8(3), uint8(70), uint64(1<<63), uint64(1), uint64(5), false)
	f.Fuzz(func(t *testing.T, algo, n uint8, down, seed, key uint64, hasKey bool) {
		names := []string{"round_robin", "least_request", "ewma", "consistent_hash"}
		ts := balTargets(int(n % 80))
		weights := make([]int, len(ts))
		for i := range ts {
			weights[i] = int(seed>>(i%60))&7 + 1
			if down>>(i%64)&1 == 1 && i%3 != 2 {
				ts[i].setActiveHealthy(false)
			}
			for range int(seed>>(i%61)) & 3 {
				ts[i].Begin()
			}
		}
		b := newBalancer(balConfig(names[int(algo)%len(names)]), ts, weights)
		fl := &filter{targets: ts, now: balNow}
		any := false
		for i := range ts {
			any = any || fl.ok(i)
		}
		for range 5 {
			got := b.pick(&PickRequest{Key: key, HasKey: hasKey}, fl)
			switch {
			case !any && got != -1:
				t.Fatalf("got position %d with none available, want -1", got)
			case any && (got < 0 || got >= len(ts) || !fl.ok(got)):
				t.Fatalf("got position %d, want an available one", got)
			}
		}
	})
}

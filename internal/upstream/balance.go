package upstream

import (
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/portico-gateway/portico/internal/config"
)

// This file holds the load-balancing algorithms. A balancer belongs to one
// config snapshot of one service: its targets and weights are fixed for its
// life. Every pick sees only the positions its filter lets through
// (available targets the request has not tried yet), so an unhealthy,
// ejected or tried target neither gets traffic nor distorts the others'
// shares.
//
//   - round_robin: smooth weighted round robin (the NGINX algorithm) over
//     the passing targets. Its sequence over all targets is computed once,
//     so a pick is one atomic add (equal weights need no sequence); when
//     the position whose turn it is does not pass, its turn goes to the
//     passing ones in proportion to their weights (smooth weighted round
//     robin among them, under a mutex; with equal weights a second atomic
//     rotation).
//   - least_request: the passing target with the fewest in-flight requests
//     relative to its weight. Ties (all targets idle, say) are broken by a
//     rotation, weighted by smooth round robin when weights differ, so idle
//     targets share by weight.
//   - ewma: power of two random choices among the passing targets; the
//     lower latency EWMA × (in-flight + 1) / weight wins. A target with no
//     latency yet scores lowest, so a new target gets traffic.
//   - consistent_hash: a hash ring with bounded loads (see balance_hash.go).
//
// Picks do not allocate for services of up to bitsOnStack targets.

// algorithm is a balancer's algorithm.
type algorithm uint8

const (
	roundRobin algorithm = iota
	leastRequest
	ewmaP2C
	consistentHash
)

// parseAlgorithm maps config.LoadBalancer.Algorithm to an algorithm; an
// unknown or empty name (validation rejects the first) is round_robin.
func parseAlgorithm(s string) algorithm {
	switch s {
	case "least_request":
		return leastRequest
	case "ewma":
		return ewmaP2C
	case "consistent_hash":
		return consistentHash
	}
	return roundRobin
}

const (
	// ewmaTries is how many random pairs ewma draws before it counts the
	// passing targets and draws among them: with most targets passing,
	// one pair almost always does.
	ewmaTries = 4
	// ewmaScan is the number of targets up to which ewma counts the
	// passing ones first: cheaper than a failed draw.
	ewmaScan = 8
)

// balancer picks a target position for each request. It is one concrete
// type rather than an interface per algorithm, so the filter a pick is
// given stays on the caller's stack. It is safe for concurrent use.
type balancer struct {
	algo    algorithm
	targets []*Target
	weights []int64
	uniform bool // all weights equal

	next atomic.Uint64 // round robin position; rotation of least_request ties
	skip atomic.Uint64 // rotation over the passing targets when next's does not pass

	// schedule is one period of smooth weighted round robin over all
	// targets (weights divided by their gcd), so that with unequal weights
	// a pick is one atomic add while every target passes; nil when the
	// weights are equal or the period is too long.
	schedule []int32

	mu      sync.Mutex
	current []int64 // smooth weighted round robin state, under mu
	load    []int64 // least_request scratch: in-flight per position, -1 when not passing; under mu

	hash hashing // consistent_hash only
}

// newBalancer returns the balancer of one service snapshot. cfg has its
// defaults applied; weights (one per target, each at least 1) are the
// snapshot's, not the targets' latest.
func newBalancer(cfg config.LoadBalancer, targets []*Target, weights []int) *balancer {
	b := &balancer{
		algo:    parseAlgorithm(cfg.Algorithm),
		targets: targets,
		weights: make([]int64, len(targets)),
		uniform: true,
		current: make([]int64, len(targets)),
	}
	for i := range targets {
		w := int64(1)
		if i < len(weights) && weights[i] > 0 {
			w = int64(weights[i])
		}
		b.weights[i] = w
		if w != b.weights[0] {
			b.uniform = false
		}
	}
	if b.algo == roundRobin && !b.uniform {
		b.schedule = smoothSchedule(b.weights)
	}
	if b.algo == leastRequest || b.algo == consistentHash {
		b.load = make([]int64, len(targets))
	}
	if b.algo == consistentHash {
		b.hash = newHashing(cfg, targets, b.weights)
	}
	return b
}

// pick returns the position in targets of the target for req, or -1 when
// no position passes f.
func (b *balancer) pick(req *PickRequest, f *filter) int {
	switch len(b.targets) {
	case 0:
		return -1
	case 1:
		if f.ok(0) {
			return 0
		}
		return -1
	}
	switch b.algo {
	case leastRequest:
		return b.leastRequest(f)
	case ewmaP2C:
		return b.ewma(f)
	case consistentHash:
		if req != nil && req.HasKey {
			return b.consistent(req.Key, f)
		}
		return b.leastRequest(f)
	}
	return b.roundRobin(f)
}

// roundRobin is smooth weighted round robin over the passing positions.
func (b *balancer) roundRobin(f *filter) int {
	if !b.uniform {
		if b.schedule == nil {
			return b.smooth(f)
		}
		c := b.next.Add(1) - 1
		if i := int(b.schedule[c%uint64(len(b.schedule))]); f.ok(i) {
			return i
		}
		// The turn of a position that does not pass goes to the passing
		// ones by smooth weighted round robin among them, so each gets its
		// weight's share of the missing one's turns.
		return b.smooth(f)
	}
	if i := int((b.next.Add(1) - 1) % uint64(len(b.targets))); f.ok(i) {
		return i
	}
	// The position whose turn it is does not pass: hand its turn to the
	// passing positions in rotation, so each gets an equal share of the
	// missing one's, rather than the next one in line getting all of it.
	var buf [bitsOnStack / 64]uint64
	pass := newBitset(&buf, len(b.targets))
	m := 0
	for i := range b.targets {
		if f.ok(i) {
			pass.set(i)
			m++
		}
	}
	if m == 0 {
		return -1
	}
	return pass.nth(int((b.skip.Add(1) - 1) % uint64(m)))
}

// smooth is NGINX's smooth weighted round robin: each passing position
// gains its weight, the highest wins and loses the passing total. Weights 3
// and 1 give a a b a rather than a a a b. Positions that do not pass keep
// their state and take no share.
func (b *balancer) smooth(f *filter) int {
	b.mu.Lock()
	best, total := -1, int64(0)
	for i, w := range b.weights {
		if !f.ok(i) {
			continue
		}
		b.current[i] += w
		total += w
		if best < 0 || b.current[i] > b.current[best] {
			best = i
		}
	}
	if best >= 0 {
		b.current[best] -= total
	}
	b.mu.Unlock()
	return best
}

// maxSchedule bounds a round robin schedule's length, and
// maxScheduleWork the cost of computing it (length × targets); beyond
// them, weighted round robin runs smooth under its mutex on every pick.
const (
	maxSchedule     = 1 << 16
	maxScheduleWork = 1 << 23
)

// smoothSchedule returns the sequence of positions that smooth weighted
// round robin picks in one period when every target passes: each position
// i appears weights[i]/gcd times, interleaved. It returns nil when the
// period is longer than maxSchedule.
func smoothSchedule(weights []int64) []int32 {
	var g int64
	for _, w := range weights {
		g = gcd(g, w)
	}
	var period int64
	for _, w := range weights {
		period += w / g
	}
	if period > maxSchedule || period*int64(len(weights)) > maxScheduleWork {
		return nil
	}
	schedule := make([]int32, period)
	current := make([]int64, len(weights))
	for k := range schedule {
		best := 0
		for i, w := range weights {
			current[i] += w / g
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= period
		schedule[k] = int32(best)
	}
	return schedule
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// leastRequest returns the passing position with the fewest in-flight
// requests relative to its weight (a has fewer than b when
// inflight_a × weight_b < inflight_b × weight_a).
func (b *balancer) leastRequest(f *filter) int {
	if !b.uniform {
		return b.leastWeighted(f)
	}
	var buf [bitsOnStack / 64]uint64
	ties := newBitset(&buf, len(b.targets))
	least, m := int64(-1), 0
	for i, t := range b.targets {
		if !f.ok(i) {
			continue
		}
		switch in := max(t.Inflight(), 0); {
		case least < 0 || in < least:
			ties.clear()
			ties.set(i)
			least, m = in, 1
		case in == least:
			ties.set(i)
			m++
		}
	}
	switch m {
	case 0:
		return -1
	case 1:
		return ties.nth(0)
	}
	return ties.nth(int((b.next.Add(1) - 1) % uint64(m)))
}

// leastWeighted is leastRequest with unequal weights. The positions tied
// for the least load share by smooth weighted round robin, so idle targets
// get traffic in proportion to their weights.
func (b *balancer) leastWeighted(f *filter) int {
	b.mu.Lock()
	best := -1
	for i, t := range b.targets {
		if !f.ok(i) {
			b.load[i] = -1
			continue
		}
		in := max(t.Inflight(), 0)
		b.load[i] = in
		if best < 0 || in*b.weights[best] < b.load[best]*b.weights[i] {
			best = i
		}
	}
	if best < 0 {
		b.mu.Unlock()
		return -1
	}
	bl, bw := b.load[best], b.weights[best]
	pick, total := -1, int64(0)
	for i, in := range b.load {
		w := b.weights[i]
		if in < 0 || in*bw != bl*w {
			continue
		}
		b.current[i] += w
		total += w
		if pick < 0 || b.current[i] > b.current[pick] {
			pick = i
		}
	}
	b.current[pick] -= total
	b.mu.Unlock()
	return pick
}

// ewma is the power of two random choices: two distinct passing positions
// drawn uniformly, the lower score wins (see ewmaBetter).
func (b *balancer) ewma(f *filter) int {
	n := len(b.targets)
	if n > ewmaScan {
		for range ewmaTries {
			i, j := randPair(n)
			if f.ok(i) && f.ok(j) {
				return b.ewmaBetter(i, j)
			}
		}
	}
	// Few targets, or many that do not pass: draw among those that pass.
	var buf [bitsOnStack / 64]uint64
	pass := newBitset(&buf, n)
	m := 0
	for i := range b.targets {
		if f.ok(i) {
			pass.set(i)
			m++
		}
	}
	switch m {
	case 0:
		return -1
	case 1:
		return pass.nth(0)
	}
	i, j := randPair(m)
	return b.ewmaBetter(pass.nth(i), pass.nth(j))
}

// ewmaBetter returns the lower scoring of positions i and j: latency EWMA ×
// (in-flight + 1) / weight. An unknown latency (no answer yet) scores
// lowest; between two unknown ones, the load decides.
func (b *balancer) ewmaBetter(i, j int) int {
	ti, tj := b.targets[i], b.targets[j]
	li, lj := float64(ti.Latency()), float64(tj.Latency())
	si := float64(max(ti.Inflight(), 0)+1) * float64(b.weights[j])
	sj := float64(max(tj.Inflight(), 0)+1) * float64(b.weights[i])
	switch {
	case li == 0 && lj == 0:
	case li == 0:
		return i
	case lj == 0:
		return j
	default:
		si, sj = si*li, sj*lj
	}
	if sj < si {
		return j
	}
	return i
}

// randPair returns two distinct uniformly drawn numbers in [0, n), n >= 2,
// from the runtime's per-thread generator (no lock, no allocation).
func randPair(n int) (int, int) {
	r := rand.Uint64()
	// Lemire's multiply-shift: a 32-bit random number times n, shifted
	// down 32 bits, is uniform enough in [0, n) for n far below 2^32.
	a := int(((r & 0xffffffff) * uint64(n)) >> 32)
	c := int(((r >> 32) * uint64(n-1)) >> 32)
	if c >= a {
		c++
	}
	return a, c
}

// bitsOnStack is the number of positions a pick tracks in a stack array;
// larger services (rare) allocate a bit set per pick.
const bitsOnStack = 1024

// bitset is a set of target positions.
type bitset []uint64

// newBitset returns an empty set for n positions, backed by buf when it is
// large enough.
func newBitset(buf *[bitsOnStack / 64]uint64, n int) bitset {
	words := (n + 63) / 64
	if words <= len(buf) {
		return buf[:words]
	}
	return make(bitset, words)
}

func (s bitset) set(i int)      { s[i/64] |= 1 << (uint(i) % 64) }
func (s bitset) has(i int) bool { return s[i/64]&(1<<(uint(i)%64)) != 0 }
func (s bitset) clear()         { clear(s) }

// nth returns the position of the k-th (from 0) member, or -1.
func (s bitset) nth(k int) int {
	for w, word := range s {
		c := bits.OnesCount64(word)
		if k >= c {
			k -= c
			continue
		}
		for ; k > 0; k-- {
			word &= word - 1
		}
		return w*64 + bits.TrailingZeros64(word)
	}
	return -1
}

package upstream

import (
	"cmp"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"

	"github.com/portico-gateway/portico/internal/config"
)

// This file holds consistent hashing with bounded loads (Mirrokni,
// Thorup and Zadimoghaddam, 2016). Each target owns ringPointsPerWeight ×
// weight points on a ring of 64-bit hashes of "url#i"; a request's key goes
// to the owner of the first point at or after the key's hash, so adding or
// removing a target moves only the keys of its own arcs. A point's hash
// depends only on the target URL and the point number, never on the
// target's position, so a reload keeps every key where it was unless its
// target changed.
//
// Bounded loads: walking clockwise from the key, the first passing target
// whose load stays within the bound wins:
//
//	inflight + 1 <= ceil(load_factor × (total in-flight + 1) × weight / passing weight)
//
// over the passing targets; with equal weights that is load_factor times
// the mean. A hot key thus spills to the next targets on the ring instead
// of overloading its own, and goes back once the load falls. Since the
// bounds add up to more than the total load, some target is always within
// its bound; should concurrent requests race past all of them, the first
// passing target wins.

const (
	// ringPointsPerWeight is the number of ring points per unit of weight.
	ringPointsPerWeight = 160
	// maxRingPoints caps a ring's size (and memory: 12 bytes a point);
	// above it every target's points are scaled down by the same factor.
	maxRingPoints = 1 << 18
)

// hashSource is what consistent_hash hashes.
type hashSource uint8

const (
	hashClientIP hashSource = iota
	hashHeader
	hashCookie
)

// hashing is the consistent_hash state of a balancer: the key source and
// the ring, both immutable.
type hashing struct {
	on         hashSource
	name       string // header (canonical form) or cookie name
	loadFactor float64
	points     []uint64 // ring point hashes, ascending
	owners     []int32  // owners[k] is the position of the target owning points[k]
}

func newHashing(cfg config.LoadBalancer, targets []*Target, weights []int64) hashing {
	h := hashing{loadFactor: cfg.LoadFactor}
	if h.loadFactor < 1 {
		h.loadFactor = config.DefaultLoadFactor
	}
	switch cfg.HashOn {
	case "header":
		h.on, h.name = hashHeader, textproto.CanonicalMIMEHeaderKey(cfg.HashKey)
	case "cookie":
		h.on, h.name = hashCookie, cfg.HashKey
	}

	var total int64
	for _, w := range weights {
		total += w
	}
	count := func(w int64) int {
		n := ringPointsPerWeight * w
		if ringPointsPerWeight*total > maxRingPoints {
			n = w * maxRingPoints / total
		}
		return int(max(n, 1))
	}
	type point struct {
		hash  uint64
		owner int32
	}
	size := 0
	for _, w := range weights {
		size += count(w)
	}
	ring := make([]point, 0, size)
	var buf []byte
	for i, t := range targets {
		for v := range count(weights[i]) {
			buf = append(buf[:0], t.URL...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(v), 10)
			ring = append(ring, point{hash64(buf), int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})
	h.points = make([]uint64, len(ring))
	h.owners = make([]int32, len(ring))
	for k, p := range ring {
		h.points[k], h.owners[k] = p.hash, p.owner
	}
	return h
}

// hashKey returns the consistent-hash key of r: the hash of the configured
// header's first value, of the configured cookie's value, or of the client
// IP. ok is false when the request has none (a missing or empty header or
// cookie, an invalid client IP) or the algorithm is not consistent_hash;
// the pick then falls back to least_request. It allocates nothing except
// for hash_on cookie, which parses the Cookie header.
func (b *balancer) hashKey(r *http.Request, clientIP netip.Addr) (key uint64, ok bool) {
	if b.algo != consistentHash {
		return 0, false
	}
	switch b.hash.on {
	case hashHeader:
		vs := r.Header[b.hash.name]
		if len(vs) == 0 || vs[0] == "" {
			return 0, false
		}
		return hash64(vs[0]), true
	case hashCookie:
		c, err := r.Cookie(b.hash.name)
		if err != nil || c.Value == "" {
			return 0, false
		}
		return hash64(c.Value), true
	}
	if !clientIP.IsValid() {
		return 0, false
	}
	// IPv4-mapped IPv6 and plain IPv4 are the same client.
	ip := clientIP.Unmap().As16()
	return hash64(ip[:]), true
}

// consistent returns the position for key: the first passing target
// clockwise from it on the ring whose load is within the bound.
func (b *balancer) consistent(key uint64, f *filter) int {
	points := b.hash.points
	start, _ := slices.BinarySearch(points, key)
	if start == len(points) {
		start = 0
	}
	// An idle home target is always within its bound (the bound is at
	// least 1): skip counting the load of the others.
	if i := int(b.hash.owners[start]); b.targets[i].Inflight() <= 0 && f.ok(i) {
		return i
	}

	n := len(b.targets)
	var pbuf, sbuf [bitsOnStack / 64]uint64
	pass, seen := newBitset(&pbuf, n), newBitset(&sbuf, n)
	m := 0
	var load, weight int64
	for i, t := range b.targets {
		if !f.ok(i) {
			continue
		}
		pass.set(i)
		m++
		load += max(t.Inflight(), 0)
		weight += b.weights[i]
	}
	if m == 0 {
		return -1
	}
	scale := b.hash.loadFactor * float64(load+1) / float64(weight)

	first, visited := -1, 0
	for k := 0; k < len(points) && visited < m; k++ {
		p := start + k
		if p >= len(points) {
			p -= len(points)
		}
		i := int(b.hash.owners[p])
		if !pass.has(i) || seen.has(i) {
			continue
		}
		seen.set(i)
		visited++
		if first < 0 {
			first = i
		}
		in := max(b.targets[i].Inflight(), 0)
		if float64(in+1) <= math.Ceil(scale*float64(b.weights[i])) {
			return i
		}
	}
	return first
}

// hash64 is 64-bit FNV-1a followed by the MurmurHash3 finalizer, which
// spreads FNV's weak last-byte mixing over all bits so that ring points
// and keys differing in one trailing digit land far apart.
func hash64[T string | []byte](s T) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

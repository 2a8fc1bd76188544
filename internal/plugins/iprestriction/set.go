package iprestriction

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// addrSet is a set of addresses compiled from CIDR ranges: for each family,
// sorted, non-overlapping, non-adjacent inclusive ranges, searched in
// O(log n) without allocating.
type addrSet struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

type range6 struct{ lo, hi u128 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	if a.lo != math.MaxUint64 {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != math.MaxUint64 {
		return u128{a.hi + 1, 0}, true
	}
	return u128{}, false
}

func v4num(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6num(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// newAddrSet compiles masked prefixes (as parseEntry returns them) into a
// set. Overlapping and adjacent ranges are merged.
func newAddrSet(prefixes []netip.Prefix) addrSet {
	var s addrSet
	for _, p := range prefixes {
		host := p.Addr().BitLen() - p.Bits()
		if p.Addr().Is4() {
			lo := v4num(p.Addr())
			s.v4 = append(s.v4, range4{lo, lo | uint32(uint64(1)<<host-1)})
			continue
		}
		lo := v6num(p.Addr())
		hi := lo
		if host >= 64 {
			hi.lo = math.MaxUint64
			hi.hi |= uint64(1)<<(host-64) - 1 // host 128: shift by 64 is 0, so all ones
		} else {
			hi.lo |= uint64(1)<<host - 1
		}
		s.v6 = append(s.v6, range6{lo, hi})
	}
	s.v4 = merge4(s.v4)
	s.v6 = merge6(s.v6)
	return s
}

func merge4(rs []range4) []range4 {
	slices.SortFunc(rs, func(a, b range4) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].hi == math.MaxUint32 || r.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func merge6(rs []range6) []range6 {
	slices.SortFunc(rs, func(a, b range6) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			after, ok := last.hi.next()
			if !ok || r.lo.cmp(after) <= 0 {
				if r.hi.cmp(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// empty reports whether the set holds no address.
func (s *addrSet) empty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// contains reports whether a (unmapped, any zone ignored) is in the set.
func (s *addrSet) contains(a netip.Addr) bool {
	if a.Is4() {
		x := v4num(a)
		rs := s.v4
		// Find the first range starting after x; x is in the one before.
		i, j := 0, len(rs)
		for i < j {
			h := int(uint(i+j) >> 1)
			if rs[h].lo <= x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i > 0 && x <= rs[i-1].hi
	}
	if !a.Is6() {
		return false
	}
	x := v6num(a)
	rs := s.v6
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if rs[h].lo.cmp(x) <= 0 {
			i = h + 1
		} else {
			j = h
		}
	}
	return i > 0 && x.cmp(rs[i-1].hi) <= 0
}

package limiter

import (
	"context"
	"testing"
	"time"
)

// FuzzMemoryDecisions drives one key with arbitrary rules and clock steps
// and checks the invariants every caller relies on: Remaining in
// [0, capacity], RetryAfter > 0 exactly when denied and honest, and a fixed
// window never allowing more than Limit.
func FuzzMemoryDecisions(f *testing.F) {
	f.Add(uint8(0), uint16(10), uint16(20), uint32(1000), []byte{0, 0, 0, 5, 9, 200, 0, 0})
	f.Add(uint8(1), uint16(3), uint16(0), uint32(60000), []byte{1, 2, 3, 255, 0, 0, 0})
	f.Add(uint8(2), uint16(1), uint16(0), uint32(1), []byte{0, 0, 128, 0, 0})
	f.Fuzz(func(t *testing.T, alg uint8, limit, burst uint16, windowMS uint32, steps []byte) {
		r := Rule{
			Limit:     int64(limit%1000) + 1,
			Burst:     int64(burst % 1000),
			Window:    time.Duration(windowMS%86_400_000+1) * time.Millisecond,
			Algorithm: Algorithm(alg % 3),
		}
		capacity := r.Limit
		if r.Algorithm == GCRA {
			capacity = r.burst()
		}
		c := newClock()
		m := newTestMemory(t, c)
		ctx := context.Background()
		perWindow := map[int64]int64{}
		for i, s := range steps {
			c.Advance(time.Duration(s) * r.Window / 97)
			d, err := m.Allow(ctx, "k", r)
			if err != nil {
				t.Fatalf("step %d: %s", i, err)
			}
			if d.Remaining < 0 || d.Remaining > capacity {
				t.Fatalf("step %d: got remaining %d, want within [0, %d]", i, d.Remaining, capacity)
			}
			if d.Allowed != (d.RetryAfter == 0) {
				t.Fatalf("step %d: got allowed=%t with RetryAfter %s", i, d.Allowed, d.RetryAfter)
			}
			if d.Reset < 0 {
				t.Fatalf("step %d: got negative Reset %s", i, d.Reset)
			}
			if d.Allowed && r.Algorithm == FixedWindow {
				w := c.Now().UnixNano() / int64(r.Window)
				if perWindow[w]++; perWindow[w] > r.Limit {
					t.Fatalf("step %d: got %d allowed in one fixed window, want <= %d", i, perWindow[w], r.Limit)
				}
			}
			if !d.Allowed && s%2 == 0 {
				c.Advance(d.RetryAfter)
				e, err := m.Allow(ctx, "k", r)
				if err != nil || !e.Allowed {
					t.Fatalf("step %d: got denied after waiting RetryAfter %s, want allowed", i, d.RetryAfter)
				}
				if r.Algorithm == FixedWindow {
					perWindow[c.Now().UnixNano()/int64(r.Window)]++
				}
			}
		}
	})
}

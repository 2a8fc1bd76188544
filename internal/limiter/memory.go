package limiter

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

const numShards = 64

// defaultSweepInterval is how often the sweeper drops expired entries.
const defaultSweepInterval = 10 * time.Second

// MemoryOptions configures a Memory limiter.
type MemoryOptions struct {
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
	// SweepInterval is how often a background goroutine drops expired keys;
	// default 10s. A negative value starts no goroutine: expired keys are
	// then ignored on access and dropped only by Sweep.
	SweepInterval time.Duration
}

// Memory is an in-process Limiter: 64 mutex-guarded shards of small
// entries, with idle keys expiring (see the package doc). It is safe for
// concurrent use; Close stops its sweeper.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [numShards]shard
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type shard struct {
	mu   sync.Mutex
	m    map[string]entry
	peak int // the largest len(m) since the map was last rebuilt
	_    [40]byte
}

// entry is one key's state. kind is the Algorithm plus one, so the zero
// entry is "absent". exp is the Unix nanosecond time after which the entry
// no longer changes a decision.
type entry struct {
	kind uint8
	w    int64 // window index (fixed, sliding)
	a    int64 // GCRA: TAT; windows: current count
	b    int64 // sliding: previous window count
	exp  int64
}

// NewMemory returns a Memory limiter and, unless opts.SweepInterval is
// negative, starts its sweeper goroutine; call Close to stop it.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{now: opts.Now, seed: maphash.MakeSeed()}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]entry)
	}
	iv := opts.SweepInterval
	if iv == 0 {
		iv = defaultSweepInterval
	}
	if iv > 0 {
		m.stop = make(chan struct{})
		m.done = make(chan struct{})
		go m.sweeper(iv)
	}
	return m
}

// Close stops the sweeper goroutine and waits for it. It is idempotent; the
// Memory keeps deciding after Close.
func (m *Memory) Close() error {
	m.once.Do(func() {
		if m.stop != nil {
			close(m.stop)
			<-m.done
		}
	})
	return nil
}

func (m *Memory) sweeper(iv time.Duration) {
	defer close(m.done)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Sweep drops every expired entry now and rebuilds shard maps that shrank
// to under half of their peak, so their memory can be collected.
func (m *Memory) Sweep() {
	now := m.now().UnixNano()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.exp <= now {
				delete(s.m, k)
			}
		}
		if n := len(s.m); n < s.peak/2 {
			fresh := make(map[string]entry, n)
			for k, e := range s.m {
				fresh[k] = e
			}
			s.m = fresh
			s.peak = n
		}
		s.mu.Unlock()
	}
}

// Len returns the number of keys held, expired or not.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Allow decides one request for key under r. ctx is unused: the decision
// never blocks on I/O.
func (m *Memory) Allow(_ context.Context, key string, r Rule) (Decision, error) {
	if err := r.Validate(); err != nil {
		return Decision{}, err
	}
	now := m.now().UnixNano()
	s := &m.shards[maphash.String(m.seed, key)&(numShards-1)]
	s.mu.Lock()
	e, ok := s.m[key]
	if ok && (e.exp <= now || e.kind != uint8(r.Algorithm)+1) {
		e = entry{} // expired or from another algorithm: start afresh
	}
	d, ne, write := decide(e, r, now)
	if write {
		s.m[key] = ne
		if !ok {
			if n := len(s.m); n > s.peak {
				s.peak = n
			}
		}
	}
	s.mu.Unlock()
	return d, nil
}

// decide applies r at time now (Unix ns) to the state e (zero when absent)
// and returns the decision, the new state and whether to store it.
func decide(e entry, r Rule, now int64) (Decision, entry, bool) {
	switch r.Algorithm {
	case FixedWindow:
		return decideFixed(e, r, now)
	case SlidingWindow:
		return decideSliding(e, r, now)
	}
	return decideGCRA(e, r, now)
}

func decideGCRA(e entry, r Rule, now int64) (Decision, entry, bool) {
	t := max(1, int64(r.Window)/r.Limit) // emission interval
	burst := mulSat(t, r.burst())        // B*T: how far TAT may run ahead
	tat := now
	if e.kind != 0 && e.a > now {
		tat = e.a
	}
	next := tat + t
	d := Decision{Limit: r.Limit}
	if next-now > burst {
		d.Reset = time.Duration(tat - now)
		d.RetryAfter = time.Duration(next - burst - now)
		return d, e, false
	}
	d.Allowed = true
	d.Remaining = (burst - (next - now)) / t
	d.Reset = time.Duration(next - now)
	return d, entry{kind: uint8(GCRA) + 1, a: next, exp: next}, true
}

func decideFixed(e entry, r Rule, now int64) (Decision, entry, bool) {
	w := int64(r.Window)
	idx := now / w
	end := (idx + 1) * w
	var n int64
	if e.kind != 0 && e.w == idx {
		n = e.a
	}
	d := Decision{Limit: r.Limit, Reset: time.Duration(end - now)}
	if n >= r.Limit {
		d.RetryAfter = d.Reset
		return d, e, false
	}
	n++
	d.Allowed = true
	d.Remaining = r.Limit - n
	return d, entry{kind: uint8(FixedWindow) + 1, w: idx, a: n, exp: end}, true
}

// slidingState returns the current and previous window counts at time now
// for the state e.
func slidingState(e entry, w, now int64) (cur, prev int64) {
	if e.kind == 0 {
		return 0, 0
	}
	switch now / w {
	case e.w:
		return e.a, e.b
	case e.w + 1:
		return 0, e.a
	}
	return 0, 0
}

// slidingCount is the weighted count at time now.
func slidingCount(cur, prev, w, now int64) float64 {
	elapsed := now % w
	return float64(prev)*(float64(w-elapsed)/float64(w)) + float64(cur)
}

// slidingFits reports whether one more request fits at time now.
func slidingFits(e entry, r Rule, now int64) bool {
	w := int64(r.Window)
	cur, prev := slidingState(e, w, now)
	return slidingCount(cur, prev, w, now)+1 <= float64(r.Limit)
}

func decideSliding(e entry, r Rule, now int64) (Decision, entry, bool) {
	w := int64(r.Window)
	idx := now / w
	elapsed := now - idx*w
	cur, prev := slidingState(e, w, now)
	d := Decision{Limit: r.Limit}
	if slidingCount(cur, prev, w, now)+1 > float64(r.Limit) {
		d.RetryAfter = time.Duration(slidingWait(e, r, now, cur, prev))
		d.Reset = time.Duration(2*w - elapsed)
		if cur == 0 {
			d.Reset = time.Duration(w - elapsed)
		}
		return d, e, false
	}
	cur++
	d.Allowed = true
	d.Remaining = max(0, int64(math.Floor(float64(r.Limit)-slidingCount(cur, prev, w, now)+1e-9)))
	d.Reset = time.Duration(2*w - elapsed)
	return d, entry{kind: uint8(SlidingWindow) + 1, w: idx, a: cur, b: prev, exp: (idx + 2) * w}, true
}

// slidingWait returns the shortest wait after which one request fits,
// computed in closed form and then checked against slidingFits so that the
// answer is honest despite floating-point rounding.
func slidingWait(e entry, r Rule, now, cur, prev int64) int64 {
	w := int64(r.Window)
	elapsed := now % w
	lim := float64(r.Limit)
	var t int64
	if cur+1 <= r.Limit && prev > 0 {
		// Wait within this window for the previous window's weight to fall.
		t = int64(math.Ceil(float64(w-elapsed) - (lim-1-float64(cur))*float64(w)/float64(prev)))
	} else {
		// Wait into the next window, where this window's count decays.
		t = (w - elapsed) + int64(math.Ceil(float64(w)-(lim-1)*float64(w)/float64(cur)))
	}
	t = max(1, t)
	for i := 0; i < 64 && !slidingFits(e, r, now+t); i++ {
		t++
	}
	if !slidingFits(e, r, now+t) {
		t = 2*w - elapsed // both windows gone: always fits
	}
	return t
}

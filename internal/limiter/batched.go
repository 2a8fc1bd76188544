package limiter

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Batched)(nil)

// batchedShards is the number of key shards of a Batched limiter.
const batchedShards = 64

// BatchedOptions configures a Batched limiter.
type BatchedOptions struct {
	// LeaseSize is the number of tokens taken from Redis at a time, capped
	// at the rule's limit; <= 0 means max(1, Limit/100) per rule.
	LeaseSize int64
	// Now is the local clock that ends leases with their window; default
	// time.Now.
	Now func() time.Time
}

// BatchedStats are cumulative counters for metrics and tests.
type BatchedStats struct {
	// Leases counts lease requests sent to Redis (round trips).
	Leases uint64
	// Local counts decisions answered from a lease or a cached refusal,
	// without a round trip.
	Local uint64
}

// Batched is a Limiter for fixed-window rules that takes tokens from Redis
// in leases and answers from the lease in memory until it is spent: about
// one round trip per lease instead of one per decision.
//
// A lease is counted in Redis when it is taken, so the instances sharing a
// Redis never admit more than Limit in a window. Tokens still leased when
// the window ends are lost, so with N instances at most N×(lease−1) fewer
// requests than Limit may be admitted in a window (under-admission only).
// A lease ends no later than the Redis window it was taken from: its end
// is measured on the local clock from just before the round trip. Beyond
// the bound, a lease whose answer is lost (a timeout after Redis granted
// it) or dropped because the rule changed also only lowers what is
// admitted.
//
// It shares the connections of the Redis limiter it was made from; closing
// that closes both. Leases expire with their window, so memory holds the
// keys seen in the current windows only.
type Batched struct {
	redis  *Redis
	lease  int64
	now    func() time.Time
	seed   maphash.Seed
	shards [batchedShards]batchedShard

	leases, local atomic.Uint64
}

type batchedShard struct {
	mu        sync.Mutex
	m         map[string]*lease
	nextSweep int64 // local Unix ns of the next sweep of expired leases
}

// lease is one key's tokens for one window. lock (a one-slot channel, so
// that waiting honours the context) serialises the key's decisions, so
// concurrent requests share one refill instead of each taking a lease.
type lease struct {
	lock      chan struct{}
	limit     int64
	window    time.Duration
	left      int64        // tokens of the lease not yet used
	global    int64        // tokens left in Redis for the window when the lease was taken
	expires   atomic.Int64 // local Unix ns when the window ends (conservatively early)
	exhausted bool         // Redis had no tokens left for this window
	dropped   bool         // removed from its shard by a sweep
}

// NewBatched returns a Batched limiter that leases tokens through primary.
func NewBatched(primary *Redis, opts BatchedOptions) *Batched {
	b := &Batched{redis: primary, lease: opts.LeaseSize, now: opts.Now, seed: maphash.MakeSeed()}
	if b.now == nil {
		b.now = time.Now
	}
	for i := range b.shards {
		b.shards[i].m = make(map[string]*lease)
	}
	return b
}

// Stats returns the counters.
func (b *Batched) Stats() BatchedStats {
	return BatchedStats{Leases: b.leases.Load(), Local: b.local.Load()}
}

// Len returns the number of keys held, expired or not (for tests).
func (b *Batched) Len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// leaseSize is the lease for r: the configured size or max(1, Limit/100),
// never more than Limit.
func (b *Batched) leaseSize(r Rule) int64 {
	n := b.lease
	if n <= 0 {
		n = max(1, r.Limit/100)
	}
	return min(n, r.Limit)
}

// Allow decides one request for key under r, a fixed-window rule: from the
// key's lease when it has tokens left in the current window, otherwise
// with one round trip that takes the next lease. Other algorithms are
// refused with an error wrapping ErrInvalidRule.
func (b *Batched) Allow(ctx context.Context, key string, r Rule) (Decision, error) {
	if err := r.Validate(); err != nil {
		return Decision{}, err
	}
	if r.Algorithm != FixedWindow {
		return Decision{}, fmt.Errorf("%w: batched mode supports only fixed_window, not %s", ErrInvalidRule, r.Algorithm)
	}
	var l *lease
	for {
		l = b.entry(key)
		select {
		case l.lock <- struct{}{}:
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		}
		if !l.dropped {
			break
		}
		<-l.lock // swept meanwhile: use the key's new holder
	}
	defer func() { <-l.lock }()

	now := b.now().UnixNano()
	if l.limit != r.Limit || l.window != r.Window || now >= l.expires.Load() {
		l.limit, l.window, l.left, l.global, l.exhausted = r.Limit, r.Window, 0, 0, false
		l.expires.Store(0)
	}
	if l.left > 0 || l.exhausted {
		b.local.Add(1)
		return l.decide(r, now), nil
	}
	if err := b.take(ctx, key, r, l, now); err != nil {
		return Decision{}, err
	}
	return l.decide(r, now), nil
}

// decide spends one token of l, or refuses when it has none.
func (l *lease) decide(r Rule, now int64) Decision {
	wait := time.Duration(max(1, l.expires.Load()-now))
	if l.left <= 0 {
		return Decision{Limit: r.Limit, Reset: wait, RetryAfter: wait}
	}
	l.left--
	return Decision{Allowed: true, Limit: r.Limit, Remaining: l.left + l.global, Reset: wait}
}

// take asks Redis for the next lease of key's window. The window's end is
// measured from the local time before the call, so the lease ends no later
// than Redis's window does.
func (b *Batched) take(ctx context.Context, key string, r Rule, l *lease, now int64) error {
	ctx, cancel := context.WithTimeout(ctx, b.redis.timeout)
	defer cancel()
	b.leases.Add(1)
	winUS := max(1, r.Window.Microseconds())
	res, err := leaseScript.Run(ctx, b.redis.client, []string{"{" + b.redis.prefix + key + "}"},
		strconv.FormatInt(r.Limit, 10), strconv.FormatInt(winUS, 10), strconv.FormatInt(b.leaseSize(r), 10)).Int64Slice()
	if err != nil {
		return fmt.Errorf("redis rate limit lease: %w", err)
	}
	if len(res) != 3 {
		return fmt.Errorf("redis rate limit lease: script returned %d values, want 3", len(res))
	}
	l.left, l.global = max(0, res[0]), max(0, res[1])
	l.exhausted = l.left == 0
	l.expires.Store(now + max(1, res[2])*int64(time.Microsecond))
	return nil
}

// entry returns key's lease holder, creating it; it also drops the
// shard's expired leases about once a second.
func (b *Batched) entry(key string) *lease {
	s := &b.shards[maphash.String(b.seed, key)%batchedShards]
	now := b.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now >= s.nextSweep {
		s.nextSweep = now + int64(time.Second)
		for k, l := range s.m {
			if now < l.expires.Load() || k == key {
				continue
			}
			select {
			case l.lock <- struct{}{}: // nobody is deciding with it
				l.dropped = true
				delete(s.m, k)
				<-l.lock
			default:
			}
		}
	}
	l := s.m[key]
	if l == nil {
		l = &lease{lock: make(chan struct{}, 1)}
		s.m[key] = l
	}
	return l
}

// leaseScript takes up to ARGV[3] tokens of the current fixed window of
// KEYS[1] (limit ARGV[1], window ARGV[2] µs), in the same hash layout as
// fixedScript so exact and batched instances count together. It returns
// {granted, left in the window after the grant, µs until the window ends}.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local idx = math.floor(now / win)
local left = (idx + 1) * win - now
local v = redis.call('HMGET', KEYS[1], 'w', 'c')
local n = 0
if tonumber(v[1]) == idx then n = tonumber(v[2]) end
local grant = math.min(want, limit - n)
if grant <= 0 then return {0, 0, left} end
n = n + grant
redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', n)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(left / 1000)))
return {grant, limit - n, left}
`)

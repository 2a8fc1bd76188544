// Package limiter is Portico's rate-limit decision engine (the rate_limit
// plugins in internal/plugins/ratelimit are built on it): given a key
// (already namespaced by the caller) and a Rule, a Limiter answers with a
// Decision that carries everything the RateLimit-* and Retry-After headers
// need.
//
// # Algorithms
//
// GCRA (the default) is the generic cell rate algorithm, a leaky bucket kept
// as one timestamp per key, the theoretical arrival time (TAT). With
// emission interval T = Window/Limit and burst B, a request at time now is
// allowed when max(TAT, now) + T - now <= B*T, and then TAT becomes
// max(TAT, now) + T. A full bucket therefore takes B requests at once and
// then one every T: limit 10/s with burst 20 allows 20 at once, then one per
// 100ms. It is smooth, has no window edges and so never lets twice the
// limit through around a boundary. Reset is the time until the bucket is
// full again (TAT - now).
//
// SlidingWindow keeps two fixed-window counters (the current and the
// previous window) and estimates the last Window as
// prev*(Window-elapsed)/Window + cur. It is approximate (it assumes requests
// in the previous window were spread evenly) but bounded: it never allows
// more than Limit in any window-aligned span and never more than 2x Limit in
// an arbitrary span of one Window, and in practice stays within a few percent
// of an exact sliding log at two counters per key. Reset is the time until
// the weighted count is zero (the quota fully restored), which is the end of
// the next window when the current window has requests.
//
// FixedWindow counts requests per window aligned to the epoch. It is the
// simplest and cheapest, and exact within a window, but a client can spend
// a full Limit at the end of one window and another at the start of the
// next: up to 2x Limit within a short span around the edge. Reset is the
// time until the window ends.
//
// For every algorithm, Remaining is never negative, and when a request is
// refused RetryAfter is honest: the same key's next request, made
// RetryAfter later with no other traffic on the key, is allowed.
//
// # Implementations
//
// Memory keeps state in process memory: 64 shards, each a mutex and a map
// of small fixed-size entries. An entry expires when it no longer changes a
// decision (GCRA: the bucket is full again; fixed window: the window ended;
// sliding window: the window after the current one ended). Expired entries
// are ignored on access and dropped by a sweeper goroutine owned by the
// Memory (stopped by Close); the sweeper also rebuilds a shard's map when
// it has shrunk to under half of its peak, so memory is returned after a
// burst of distinct keys.
//
// Redis keeps state in Redis (single node or Cluster): one atomic Lua script
// per algorithm and decision, time taken from Redis (TIME) so gateway
// instances with skewed clocks agree. Concurrent decisions are pipelined
// automatically (no timer: a decision that finds a connection slot free
// goes out alone at once; those that arrive while all are busy leave
// together as soon as one returns). Keys are hash-tagged
// "{prefix+key}" so each key stays on one Cluster slot, and every write sets
// PEXPIRE so idle keys disappear. Decisions are exact across any number of
// instances sharing the Redis.
//
// Resilient wraps a shared Limiter (Redis) with a per-call timeout, a
// failure policy and a circuit breaker:
//
//	closed --N consecutive errors--> open --CoolDown--> half-open (one probe)
//	half-open --probe ok--> closed;  half-open --probe fails--> open
//
// While the primary fails or the breaker is open, fail open decides with a
// local Memory limiter using the per-instance share of each limit
// (ceil(Limit/Instances)); fail closed returns ErrUnavailable. An outage
// thus adds at most Timeout to the few requests that find it, and shared
// limiting resumes by itself when the probe succeeds.
package limiter

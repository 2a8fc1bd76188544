// Package httpcache is Portico's HTTP response cache engine: the RFC 9111 rules
// (what may be stored, for how long, when a stored response may be served),
// cache keys, and the stores (bounded memory, shared Redis). The cache
// plugin (internal/plugins/cache) uses it on the request path.
package httpcache

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Entry is one stored response.
type Entry struct {
	// Status is the response status.
	Status int
	// Header holds the stored response header fields (hop-by-hop fields
	// and Set-Cookie never stored).
	Header http.Header
	// Body is the whole response body.
	Body []byte
	// RequestTime and ResponseTime bracket the exchange that produced the
	// entry (RFC 9111 §4.2.3 age calculation).
	RequestTime  time.Time
	ResponseTime time.Time
	// VaryNames are the canonical request header names the response varies
	// on (from its Vary field), and VaryValues the values the storing
	// request had for them, in the same order. A lookup matches only when
	// the request has the same values.
	VaryNames  []string
	VaryValues []string
}

// Size is the entry's approximate memory cost in bytes: body, header
// names and values, and a fixed overhead.
func (e *Entry) Size() int {
	n := len(e.Body) + 256
	for k, vs := range e.Header {
		n += len(k) + 16
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	for i := range e.VaryNames {
		n += len(e.VaryNames[i]) + len(e.VaryValues[i]) + 32
	}
	return n
}

// ErrNotFound is returned by Store.Get for a key with no entry.
var ErrNotFound = errors.New("cache: not found")

// Store keeps entries by key. Implementations are safe for concurrent use.
// A store failure must never fail a request: callers treat any error as a
// miss (Get) or as not stored (Set).
type Store interface {
	// Get returns the entry stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (*Entry, error)
	// Set stores e under key for at most ttl (after which it may be
	// evicted; a memory store may evict earlier under its byte bound).
	// The store keeps e; the caller must not modify it afterwards.
	Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error
	// Delete removes the entries under keys (missing keys are no error).
	Delete(ctx context.Context, keys ...string) error
	// DeletePrefix removes every entry whose key starts with prefix and
	// returns how many it removed.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

package forwardauth

import (
	"container/list"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// digest is a SHA-256: the cache keys decisions by the digest of the
// credentials, never by the credentials.
type digest = [sha256.Size]byte

// decision is what the authorization service answered, reduced to what
// the gateway does with it. It is read-only once made: cached decisions
// are shared by every request with the same key.
type decision struct {
	// admit is a 2xx answer.
	admit bool
	// headers are the response_headers of an admitting answer, with
	// clipped value slices (an append never writes into them).
	headers http.Header
	// consumer is the consumer_header value of an admitting answer.
	consumer string
	// failure is what the gate answers for a refusal.
	failure *pipeline.AuthFailure
}

// entry is one cached decision.
type entry struct {
	key        digest
	d          *decision
	credential string // the credential id of the requests with this key
	expires    time.Time
}

// decisions is the bounded decision cache of one route's forward_auth
// settings: least recently used first out, entries past their expiry
// dropped when met. It lives in pipeline.Shared, so a reload with the
// same settings keeps it warm.
type decisions struct {
	now func() time.Time // the clock; time.Now outside tests

	mu      sync.Mutex
	max     int
	entries map[digest]*list.Element // of *entry
	order   *list.List               // most recently used first
}

func newDecisions(max int, now func() time.Time) *decisions {
	return &decisions{now: now, max: max, entries: make(map[digest]*list.Element), order: list.New()}
}

// setMax changes the bound; the next insertion evicts down to it.
func (c *decisions) setMax(n int) {
	c.mu.Lock()
	c.max = n
	c.mu.Unlock()
}

// get returns the live entry under key.
func (c *decisions) get(key digest) (*entry, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e, true
}

// put stores d under key for ttl, evicting the least recently used
// entries beyond the bound.
func (c *decisions) put(key digest, d *decision, credential string, ttl time.Duration) {
	e := &entry{key: key, d: d, credential: credential, expires: c.now().Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushFront(e)
	for len(c.entries) > c.max {
		back := c.order.Back()
		c.order.Remove(back)
		delete(c.entries, back.Value.(*entry).key)
	}
}

// len returns the number of entries.
func (c *decisions) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// cacheFor returns how long an answer with status and header may be
// kept, at most ttl: only 2xx, 401 and 403 answers, never one marked
// no-store or no-cache, and no longer than its max-age.
func cacheFor(status int, h http.Header, ttl time.Duration) time.Duration {
	if ttl <= 0 || !(status >= 200 && status <= 299 || status == http.StatusUnauthorized || status == http.StatusForbidden) {
		return 0
	}
	for _, v := range h["Cache-Control"] {
		for dir := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(arg), `"`), 10, 64)
				if err != nil || secs < 0 {
					return 0 // a max-age the gateway cannot read: do not guess
				}
				if secs <= int64(ttl/time.Second) { // small enough not to overflow
					ttl = min(ttl, time.Duration(secs)*time.Second)
				}
			}
		}
	}
	return ttl
}

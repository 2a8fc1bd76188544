package httpcache

import (
	"net/http"
	"time"
)

// Policy is one route's caching rules, compiled from its settings.
type Policy struct {
	// DefaultTTL is the freshness lifetime of a response that carries no
	// freshness information (0: such responses are not stored; Portico
	// uses no heuristic freshness otherwise).
	DefaultTTL time.Duration
	// MaxTTL caps every freshness lifetime (0: no cap).
	MaxTTL time.Duration
	// StaleWhileRevalidate and StaleIfError are the RFC 5861 windows used
	// when the response sets none.
	StaleWhileRevalidate, StaleIfError time.Duration
}

// Storability says whether a response may be stored, and for whom.
type Storability int

// The outcomes of Storable.
const (
	// NotStorable responses are passed on and forgotten.
	NotStorable Storability = iota
	// StoreShared responses may be served to any client.
	StoreShared
	// StorePrivate responses answer an authenticated request without
	// public, s-maxage or must-revalidate: they may only be stored under
	// the requesting consumer's own key (or not at all).
	StorePrivate
)

// cacheableByDefault are the statuses RFC 9110 §15.1 calls heuristically
// cacheable.
func cacheableByDefault(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understood reports whether the caching rules of status are known here:
// the status codes RFC 9110 defines (must-understand, RFC 9111 §5.2.2.3).
func understood(status int) bool {
	switch {
	case status >= 200 && status <= 206, status >= 300 && status <= 305, status == 307, status == 308,
		status >= 400 && status <= 418, status == 421, status == 422, status == 426,
		status >= 500 && status <= 505:
		return true
	}
	return false
}

// Request is what the storing decision needs to know about the request a
// response answers.
type Request struct {
	// Authenticated: the request carried Authorization or was
	// authenticated by the gateway (RFC 9111 §3.5).
	Authenticated bool
	// Credentialed: the request carried a credential of any kind
	// (Authenticated, a Cookie, a credential an authentication plugin
	// saw). A response to it is never given a lifetime the gateway
	// assigns (DefaultTTL): only the origin may say it can be reused.
	Credentialed bool
	// NoStore is the request's no-store, when request directives are
	// honoured.
	NoStore bool
}

// Storable applies RFC 9111 §3 to a response for a GET request rq: the
// status, the response's directives (cc, from ParseResponseControl of h),
// Set-Cookie, Vary: *, partial content, and whether the request was
// authenticated (§3.5). On top of it, a lifetime the gateway assigns
// (p.DefaultTTL) applies only to a status below 400 answering a request
// without credentials: an error is stored only with explicit freshness
// from the origin (max-age, s-maxage, Expires, Surrogate-Control).
func (p *Policy) Storable(status int, h http.Header, cc *Directives, rq *Request) Storability {
	noStore := cc.NoStore
	if cc.MustUnderstand {
		if !understood(status) {
			return NotStorable
		}
		noStore = false
	}
	if rq.NoStore || noStore || cc.Private || status == http.StatusPartialContent || status < 200 {
		return NotStorable
	}
	if len(h["Set-Cookie"]) > 0 || len(h["Content-Range"]) > 0 || len(h["Trailer"]) > 0 {
		return NotStorable
	}
	for _, v := range h["Vary"] {
		if hasToken(v, "*") {
			return NotStorable
		}
	}
	if cc.NoCache && !HasValidator(h) {
		// Stored only to be revalidated on every use: useless without
		// a validator.
		return NotStorable
	}
	explicit := cc.MaxAge != Absent || cc.SMaxAge != Absent || cc.Surrogate != Absent || len(h["Expires"]) > 0
	switch {
	case explicit:
	case status >= 400:
		return NotStorable
	case !cacheableByDefault(status) && !cc.Public:
		return NotStorable
	case cc.NoCache:
	case p.DefaultTTL > 0 && !rq.Credentialed:
	default:
		return NotStorable
	}
	if rq.Authenticated && !cc.Public && cc.SMaxAge == Absent && !cc.MustRevalidate {
		return StorePrivate
	}
	return StoreShared
}

// SharedWithAuthenticated reports whether the stored response e, found
// under a shared key, may answer an authenticated request: only when it
// says public, s-maxage or must-revalidate (RFC 9111 §3.5). Other shared
// entries answered unauthenticated requests, and an authenticated caller
// may be owed a different answer.
func SharedWithAuthenticated(e *Entry) bool {
	cc := ParseResponseControl(e.Header)
	return cc.Public || cc.SMaxAge != Absent || cc.MustRevalidate
}

// Freshness describes a stored response at one moment.
type Freshness struct {
	// Lifetime is the freshness lifetime (RFC 9111 §4.2.1) after the
	// route's default and cap; Age the current age (§4.2.3).
	Lifetime, Age time.Duration
	// StaleWhileRevalidate and StaleIfError are the windows past Lifetime
	// in which the response may still be served (0 when it must not be).
	StaleWhileRevalidate, StaleIfError time.Duration
}

// Fresh reports whether the response is fresh.
func (f *Freshness) Fresh() bool { return f.Age < f.Lifetime }

// TTL is the remaining freshness, rounded down to seconds (0 when stale).
func (f *Freshness) TTL() time.Duration {
	if f.Age >= f.Lifetime {
		return 0
	}
	return (f.Lifetime - f.Age).Truncate(time.Second)
}

// Staleness is how long ago the response went stale (0 when fresh).
func (f *Freshness) Staleness() time.Duration { return max(0, f.Age-f.Lifetime) }

// InStaleWhileRevalidate reports whether a stale response may be served
// while it is revalidated in the background.
func (f *Freshness) InStaleWhileRevalidate() bool {
	return !f.Fresh() && f.Staleness() < f.StaleWhileRevalidate
}

// InStaleIfError reports whether a stale response may be served instead
// of an upstream error.
func (f *Freshness) InStaleIfError() bool { return f.Staleness() < f.StaleIfError }

// Freshness computes e's freshness at now under p. e must be a response
// entry (not a Vary marker).
func (p *Policy) Freshness(e *Entry, now time.Time) Freshness {
	cc := ParseResponseControl(e.Header)
	var f Freshness
	var ageOK bool
	f.Age, ageOK = currentAge(e, now)
	f.Lifetime = p.lifetime(e, &cc)
	if !ageOK {
		f.Lifetime = 0 // an invalid Age makes the response stale (RFC 9111 §5.1)
	}
	if cc.MustRevalidate || cc.ProxyRevalidate || cc.NoCache {
		return f
	}
	// s-maxage implies proxy-revalidate (§5.2.2.10): only the response's
	// own stale-* directives, not the route's defaults, then apply.
	routeDefaults := cc.SMaxAge == Absent
	switch {
	case cc.StaleWhileRevalidate != Absent:
		f.StaleWhileRevalidate = Seconds(cc.StaleWhileRevalidate)
	case routeDefaults:
		f.StaleWhileRevalidate = p.StaleWhileRevalidate
	}
	switch {
	case cc.StaleIfError != Absent:
		f.StaleIfError = Seconds(cc.StaleIfError)
	case routeDefaults:
		f.StaleIfError = p.StaleIfError
	}
	return f
}

// lifetime is §4.2.1: Surrogate-Control's max-age, s-maxage, max-age,
// Expires minus Date, then the route's default (for a status below 400);
// capped by MaxTTL. Invalid freshness information and no-cache make it 0.
func (p *Policy) lifetime(e *Entry, cc *Directives) time.Duration {
	var d time.Duration
	switch {
	case cc.Surrogate != Absent:
		d = Seconds(cc.Surrogate)
	case cc.Invalid || cc.NoCache:
		return 0
	case cc.SMaxAge != Absent:
		d = Seconds(cc.SMaxAge)
	case cc.MaxAge != Absent:
		d = Seconds(cc.MaxAge)
	case len(e.Header["Expires"]) > 0:
		exp, ok := parseDate(e.Header, "Expires")
		if !ok {
			return 0 // an invalid Expires (such as "0") is in the past
		}
		date, ok := parseDate(e.Header, "Date")
		if !ok {
			date = e.ResponseTime
		}
		d = max(0, exp.Sub(date))
	case e.Status >= 400:
		return 0
	default:
		d = p.DefaultTTL
	}
	if p.MaxTTL > 0 && d > p.MaxTTL {
		d = p.MaxTTL
	}
	return d
}

// CurrentAge is e's current age at now (RFC 9111 §4.2.3).
func CurrentAge(e *Entry, now time.Time) time.Duration {
	age, _ := currentAge(e, now)
	return age
}

// currentAge is CurrentAge, and whether e's Age field is valid.
func currentAge(e *Entry, now time.Time) (time.Duration, bool) {
	apparent := time.Duration(0)
	if date, ok := parseDate(e.Header, "Date"); ok {
		apparent = max(0, e.ResponseTime.Sub(date))
	}
	delay := max(0, e.ResponseTime.Sub(e.RequestTime))
	age, ok := parseAge(e.Header)
	corrected := age + delay
	initial := max(apparent, corrected)
	return initial + max(0, now.Sub(e.ResponseTime)), ok
}

// HasValidator reports whether h carries an ETag or a Last-Modified.
func HasValidator(h http.Header) bool {
	return len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0
}

// minKeep is the shortest time a stale entry with a validator is kept for
// conditional revalidation.
const minKeep = time.Minute

// StoreTTL is how long a store keeps an entry with freshness f: its
// remaining freshness and stale windows, and, when it has a validator, one
// more lifetime (at least a minute) for conditional revalidation.
func StoreTTL(f *Freshness, validator bool) time.Duration {
	ttl := max(0, f.Lifetime-f.Age) + max(f.StaleWhileRevalidate, f.StaleIfError)
	if validator {
		ttl += max(f.Lifetime, minKeep)
	}
	return ttl
}

// hasToken reports whether the comma-separated list v holds tok
// (case-insensitive).
func hasToken(v, tok string) bool {
	for len(v) > 0 {
		var part string
		part, v = cutComma(v)
		if equalFoldTrim(part, tok) {
			return true
		}
	}
	return false
}

func cutComma(v string) (string, string) {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

func equalFoldTrim(s, tok string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(tok) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], tok[i]
		if a >= 'A' && a <= 'Z' {
			a += 'a' - 'A'
		}
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

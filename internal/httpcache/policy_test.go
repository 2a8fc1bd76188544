package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestStorable(t *testing.T) {
	p := Policy{}
	withTTL := Policy{DefaultTTL: time.Minute}
	tests := []struct {
		name   string
		p      Policy
		status int
		h      http.Header
		rq     Request
		want   Storability
	}{
		{"max-age", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, Request{}, StoreShared},
		{"no freshness, no default", p, 200, http.Header{}, Request{}, NotStorable},
		{"no freshness, default ttl", withTTL, 200, http.Header{}, Request{}, StoreShared},
		{"default ttl, status not cacheable by default", withTTL, 201, http.Header{}, Request{}, NotStorable},
		{"explicit freshness on any status", p, 500, http.Header{"Cache-Control": {"max-age=5"}}, Request{}, StoreShared},
		{"default ttl never applies to an error", withTTL, 404, http.Header{}, Request{}, NotStorable},
		{"default ttl never applies to a 405", withTTL, 405, http.Header{}, Request{}, NotStorable},
		{"an error with explicit freshness", withTTL, 404, http.Header{"Cache-Control": {"max-age=60"}}, Request{}, StoreShared},
		{"an error with expires", withTTL, 400, http.Header{"Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"}}, Request{}, StoreShared},
		{"an error with no-cache and a validator", withTTL, 410, http.Header{"Cache-Control": {"no-cache"}, "Etag": {`"a"`}}, Request{}, NotStorable},
		{"default ttl: request with a cookie", withTTL, 200, http.Header{}, Request{Credentialed: true}, NotStorable},
		{"default ttl: authenticated request", withTTL, 200, http.Header{}, Request{Authenticated: true, Credentialed: true}, NotStorable},
		{"default ttl: public answer to a cookie", withTTL, 200, http.Header{"Cache-Control": {"public"}}, Request{Credentialed: true}, NotStorable},
		{"explicit freshness: request with a cookie", withTTL, 200, http.Header{"Cache-Control": {"max-age=60"}}, Request{Credentialed: true}, StoreShared},
		{"no-cache with validator: request with a cookie", withTTL, 200, http.Header{"Cache-Control": {"no-cache"}, "Etag": {`"a"`}}, Request{Credentialed: true}, StoreShared},
		{"default ttl: set-cookie", withTTL, 200, http.Header{"Set-Cookie": {"a=b"}}, Request{}, NotStorable},
		{"must-understand, known status, no-store", p, 200, http.Header{"Cache-Control": {"max-age=60, no-store, must-understand"}}, Request{}, StoreShared},
		{"must-understand, unknown status", p, 599, http.Header{"Cache-Control": {"max-age=60, must-understand"}}, Request{}, NotStorable},
		{"unknown status, explicit freshness", p, 599, http.Header{"Cache-Control": {"max-age=60"}}, Request{}, StoreShared},
		{"surrogate max-age beats no-store", p, 200, http.Header{"Cache-Control": {"no-store"}, "Surrogate-Control": {"max-age=60;portico"}}, Request{}, StoreShared},
		{"surrogate no-store beats max-age", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Surrogate-Control": {"no-store"}}, Request{}, NotStorable},
		{"surrogate for another device", p, 200, http.Header{"Surrogate-Control": {"max-age=60;other"}}, Request{}, NotStorable},
		{"public with default ttl", withTTL, 302, http.Header{"Cache-Control": {"public"}}, Request{}, StoreShared},
		{"expires", p, 200, http.Header{"Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"}}, Request{}, StoreShared},
		{"no-store", p, 200, http.Header{"Cache-Control": {"max-age=60, no-store"}}, Request{}, NotStorable},
		{"request no-store", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, Request{NoStore: true}, NotStorable},
		{"private", p, 200, http.Header{"Cache-Control": {"private, max-age=60"}}, Request{}, NotStorable},
		{"set-cookie", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Set-Cookie": {"a=b"}}, Request{}, NotStorable},
		{"206", p, 206, http.Header{"Cache-Control": {"max-age=60"}}, Request{}, NotStorable},
		{"content-range", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Content-Range": {"bytes 0-1/2"}}, Request{}, NotStorable},
		{"vary star", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Vary": {"Accept, *"}}, Request{}, NotStorable},
		{"no-cache with etag", p, 200, http.Header{"Cache-Control": {"no-cache"}, "Etag": {`"a"`}}, Request{}, StoreShared},
		{"no-cache without validator", p, 200, http.Header{"Cache-Control": {"no-cache, max-age=60"}}, Request{}, NotStorable},
		{"authenticated", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, Request{Authenticated: true, Credentialed: true}, StorePrivate},
		{"authenticated public", p, 200, http.Header{"Cache-Control": {"public, max-age=60"}}, Request{Authenticated: true, Credentialed: true}, StoreShared},
		{"authenticated s-maxage", p, 200, http.Header{"Cache-Control": {"s-maxage=60"}}, Request{Authenticated: true, Credentialed: true}, StoreShared},
		{"authenticated must-revalidate", p, 200, http.Header{"Cache-Control": {"max-age=60, must-revalidate"}}, Request{Authenticated: true, Credentialed: true}, StoreShared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cc := ParseResponseControl(tt.h)
			if got := tt.p.Storable(tt.status, tt.h, &cc, &tt.rq); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFreshness(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	entry := func(h http.Header) *Entry {
		if h.Get("Date") == "" {
			h.Set("Date", date)
		}
		return &Entry{Status: 200, Header: h, RequestTime: now, ResponseTime: now}
	}
	tests := []struct {
		name                string
		p                   Policy
		e                   *Entry
		at                  time.Time
		lifetime, age       time.Duration
		swr, sie            time.Duration
		fresh, inSWR, inSIE bool
	}{
		{name: "max-age", e: entry(http.Header{"Cache-Control": {"max-age=60"}}), at: now.Add(10 * time.Second),
			lifetime: time.Minute, age: 10 * time.Second, fresh: true},
		{name: "s-maxage beats max-age", e: entry(http.Header{"Cache-Control": {"max-age=60, s-maxage=5"}}), at: now,
			lifetime: 5 * time.Second, fresh: true},
		{name: "expires minus date", e: entry(http.Header{"Expires": {now.Add(30 * time.Second).Format(http.TimeFormat)}}), at: now,
			lifetime: 30 * time.Second, fresh: true},
		{name: "invalid expires is stale", e: entry(http.Header{"Expires": {"0"}}), at: now},
		{name: "upstream age counts", e: entry(http.Header{"Cache-Control": {"max-age=60"}, "Age": {"50"}}), at: now.Add(5 * time.Second),
			lifetime: time.Minute, age: 55 * time.Second, fresh: true},
		{name: "upstream age can make it stale", e: entry(http.Header{"Cache-Control": {"max-age=60"}, "Age": {"70"}}), at: now,
			lifetime: time.Minute, age: 70 * time.Second},
		{name: "default ttl", p: Policy{DefaultTTL: time.Minute}, e: entry(http.Header{}), at: now, lifetime: time.Minute, fresh: true},
		{name: "default ttl never for an error", p: Policy{DefaultTTL: time.Minute},
			e: &Entry{Status: 404, Header: http.Header{"Date": {date}}, RequestTime: now, ResponseTime: now}, at: now},
		{name: "surrogate max-age beats max-age", e: entry(http.Header{"Cache-Control": {"max-age=600"}, "Surrogate-Control": {"max-age=5"}}),
			at: now, lifetime: 5 * time.Second, fresh: true},
		{name: "surrogate max-age for another device", e: entry(http.Header{"Cache-Control": {"max-age=600"}, "Surrogate-Control": {"max-age=5;cdn"}}),
			at: now, lifetime: 10 * time.Minute, fresh: true},
		{name: "max ttl caps", p: Policy{MaxTTL: 10 * time.Second}, e: entry(http.Header{"Cache-Control": {"max-age=600"}}), at: now,
			lifetime: 10 * time.Second, fresh: true},
		{name: "invalid max-age stale", e: entry(http.Header{"Cache-Control": {"max-age=x1"}}), at: now},
		{name: "response windows", e: entry(http.Header{"Cache-Control": {"max-age=1, stale-while-revalidate=10, stale-if-error=100"}}),
			at: now.Add(5 * time.Second), lifetime: time.Second, age: 5 * time.Second, swr: 10 * time.Second, sie: 100 * time.Second,
			inSWR: true, inSIE: true},
		{name: "route windows", p: Policy{StaleWhileRevalidate: 2 * time.Second, StaleIfError: time.Minute},
			e: entry(http.Header{"Cache-Control": {"max-age=1"}}), at: now.Add(5 * time.Second), lifetime: time.Second,
			age: 5 * time.Second, swr: 2 * time.Second, sie: time.Minute, inSIE: true},
		{name: "must-revalidate forbids stale", p: Policy{StaleIfError: time.Minute},
			e: entry(http.Header{"Cache-Control": {"max-age=1, must-revalidate, stale-if-error=60"}}), at: now.Add(5 * time.Second),
			lifetime: time.Second, age: 5 * time.Second},
		{name: "s-maxage ignores route windows", p: Policy{StaleIfError: time.Minute},
			e: entry(http.Header{"Cache-Control": {"s-maxage=1"}}), at: now.Add(5 * time.Second), lifetime: time.Second, age: 5 * time.Second},
		{name: "no-cache always stale", e: entry(http.Header{"Cache-Control": {"no-cache, max-age=60"}, "Etag": {`"x"`}}), at: now},
		{name: "apparent age from date", e: &Entry{Status: 200, Header: http.Header{"Cache-Control": {"max-age=60"},
			"Date": {now.Add(-20 * time.Second).Format(http.TimeFormat)}}, RequestTime: now, ResponseTime: now},
			at: now, lifetime: time.Minute, age: 20 * time.Second, fresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.p.Freshness(tt.e, tt.at)
			if f.Lifetime != tt.lifetime || f.Age != tt.age || f.StaleWhileRevalidate != tt.swr || f.StaleIfError != tt.sie {
				t.Errorf("got %+v, want lifetime %s age %s swr %s sie %s", f, tt.lifetime, tt.age, tt.swr, tt.sie)
			}
			if f.Fresh() != tt.fresh || f.InStaleWhileRevalidate() != tt.inSWR || f.InStaleIfError() != tt.inSIE {
				t.Errorf("got fresh %t swr %t sie %t, want %t %t %t", f.Fresh(), f.InStaleWhileRevalidate(), f.InStaleIfError(),
					tt.fresh, tt.inSWR, tt.inSIE)
			}
		})
	}
}

// TestInvalidAgeIsStale: an Age that is not one non-negative integer makes
// the response stale (RFC 9111 §5.1, §4.2.3).
func TestInvalidAgeIsStale(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		age  []string
		want bool // fresh
	}{
		{"absent", nil, true},
		{"zero", []string{"0"}, true},
		{"spaces", []string{" 10 "}, true},
		{"list", []string{"0, 0"}, false},
		{"two lines", []string{"0", "0"}, false},
		{"negative", []string{"-7200"}, false},
		{"fraction", []string{"7200.0"}, false},
		{"parameter", []string{"0;foo=bar"}, false},
		{"letters", []string{"old"}, false},
		{"empty", []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"Cache-Control": {"max-age=3600"}, "Date": {now.Format(http.TimeFormat)}}
			if tt.age != nil {
				h["Age"] = tt.age
			}
			p := Policy{}
			f := p.Freshness(&Entry{Status: 200, Header: h, RequestTime: now, ResponseTime: now}, now)
			if f.Fresh() != tt.want {
				t.Errorf("got fresh %t, want %t", f.Fresh(), tt.want)
			}
		})
	}
}

func TestStoreTTL(t *testing.T) {
	f := Freshness{Lifetime: 10 * time.Second, Age: 4 * time.Second, StaleIfError: time.Minute}
	if got, want := StoreTTL(&f, false), 66*time.Second; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := StoreTTL(&f, true), 126*time.Second; got != want {
		t.Errorf("with validator: got %s, want %s", got, want)
	}
}

func TestNotModified(t *testing.T) {
	lm := "Wed, 21 Oct 2025 07:28:00 GMT"
	resp := http.Header{"Etag": {`W/"v1"`}, "Last-Modified": {lm}}
	tests := []struct {
		name string
		req  http.Header
		want bool
	}{
		{"weak match", http.Header{"If-None-Match": {`"v1"`}}, true},
		{"list match", http.Header{"If-None-Match": {`"x", W/"v1"`}}, true},
		{"second line", http.Header{"If-None-Match": {`"x"`, `"v1"`}}, true},
		{"no match", http.Header{"If-None-Match": {`"v2"`}}, false},
		{"star", http.Header{"If-None-Match": {"*"}}, true},
		{"inm wins over ims", http.Header{"If-None-Match": {`"v2"`}, "If-Modified-Since": {lm}}, false},
		{"ims equal", http.Header{"If-Modified-Since": {lm}}, true},
		{"ims older", http.Header{"If-Modified-Since": {"Wed, 21 Oct 2025 07:27:59 GMT"}}, false},
		{"ims bad", http.Header{"If-Modified-Since": {"yesterday"}}, false},
		{"none", http.Header{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NotModified(tt.req, resp); got != tt.want {
				t.Errorf("got %t, want %t", got, tt.want)
			}
		})
	}
}

// TestNotModifiedByDate: without Last-Modified, If-Modified-Since is
// compared with the stored response's Date (RFC 9111 §4.3.2); an invalid
// Last-Modified is not replaced by Date.
func TestNotModifiedByDate(t *testing.T) {
	date := "Wed, 21 Oct 2025 07:28:00 GMT"
	tests := []struct {
		name string
		resp http.Header
		ims  string
		want bool
	}{
		{"date not after", http.Header{"Date": {date}}, date, true},
		{"date after", http.Header{"Date": {date}}, "Wed, 21 Oct 2025 07:00:00 GMT", false},
		{"invalid last-modified", http.Header{"Date": {date}, "Last-Modified": {"yesterday"}}, date, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NotModified(http.Header{"If-Modified-Since": {tt.ims}}, tt.resp); got != tt.want {
				t.Errorf("got %t, want %t", got, tt.want)
			}
		})
	}
}

func TestRefreshed(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	e := &Entry{Status: 200, Header: http.Header{"Cache-Control": {"max-age=1"}, "Content-Length": {"3"}, "Etag": {`"a"`}, "Age": {"5"}},
		Body: []byte("abc"), RequestTime: t0, ResponseTime: t0}
	now := time.Now()
	n := Refreshed(e, http.Header{"Cache-Control": {"max-age=100"}, "Content-Length": {"0"}}, now, now)
	if got := n.Header.Get("Cache-Control"); got != "max-age=100" {
		t.Errorf("got Cache-Control %q, want max-age=100", got)
	}
	if got := n.Header.Get("Content-Length"); got != "3" {
		t.Errorf("got Content-Length %q, want 3", got)
	}
	if n.Header.Get("Age") != "" || n.Header.Get("Date") == "" {
		t.Errorf("got Age %q Date %q, want no Age and a Date", n.Header.Get("Age"), n.Header.Get("Date"))
	}
	if e.Header.Get("Cache-Control") != "max-age=1" {
		t.Error("the original entry was modified")
	}
	if !n.ResponseTime.Equal(now) || string(n.Body) != "abc" {
		t.Errorf("got %v %q, want the new times and the old body", n.ResponseTime, n.Body)
	}
}

// TestRefreshedKeepsWhatIdentifiesTheBody: a 304 updates every stored
// field (RFC 9111 §3.2) but those describing the stored body itself.
func TestRefreshedKeepsWhatIdentifiesTheBody(t *testing.T) {
	stored := http.Header{"Content-Type": {"text/plain"}, "Etag": {`"a"`}, "Content-Md5": {"old"},
		"Content-Encoding": {"gzip"}, "X-Test": {"A"}, "Content-Location": {"/foo"}}
	e := &Entry{Status: 200, Header: stored, Body: []byte("x")}
	n := Refreshed(e, http.Header{"Content-Type": {"text/plain;charset=utf-8"}, "Etag": {`"b"`}, "Content-Md5": {"new"},
		"Content-Encoding": {"br"}, "X-Test": {"B"}, "Content-Location": {"/bar"}}, time.Now(), time.Now())
	for name, want := range map[string]string{"Content-Type": "text/plain;charset=utf-8", "X-Test": "B",
		"Content-Location": "/bar", "Etag": `"a"`, "Content-Md5": "old", "Content-Encoding": "gzip"} {
		if got := n.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}

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
		auth   bool
		reqNS  bool
		want   Storability
	}{
		{"max-age", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, false, false, StoreShared},
		{"no freshness, no default", p, 200, http.Header{}, false, false, NotStorable},
		{"no freshness, default ttl", withTTL, 200, http.Header{}, false, false, StoreShared},
		{"default ttl, status not cacheable by default", withTTL, 201, http.Header{}, false, false, NotStorable},
		{"explicit freshness on any status", p, 500, http.Header{"Cache-Control": {"max-age=5"}}, false, false, StoreShared},
		{"404 cacheable by default", withTTL, 404, http.Header{}, false, false, StoreShared},
		{"public with default ttl", withTTL, 302, http.Header{"Cache-Control": {"public"}}, false, false, StoreShared},
		{"expires", p, 200, http.Header{"Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"}}, false, false, StoreShared},
		{"no-store", p, 200, http.Header{"Cache-Control": {"max-age=60, no-store"}}, false, false, NotStorable},
		{"request no-store", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, false, true, NotStorable},
		{"private", p, 200, http.Header{"Cache-Control": {"private, max-age=60"}}, false, false, NotStorable},
		{"set-cookie", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Set-Cookie": {"a=b"}}, false, false, NotStorable},
		{"206", p, 206, http.Header{"Cache-Control": {"max-age=60"}}, false, false, NotStorable},
		{"content-range", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Content-Range": {"bytes 0-1/2"}}, false, false, NotStorable},
		{"vary star", p, 200, http.Header{"Cache-Control": {"max-age=60"}, "Vary": {"Accept, *"}}, false, false, NotStorable},
		{"no-cache with etag", p, 200, http.Header{"Cache-Control": {"no-cache"}, "Etag": {`"a"`}}, false, false, StoreShared},
		{"no-cache without validator", p, 200, http.Header{"Cache-Control": {"no-cache, max-age=60"}}, false, false, NotStorable},
		{"authenticated", p, 200, http.Header{"Cache-Control": {"max-age=60"}}, true, false, StorePrivate},
		{"authenticated public", p, 200, http.Header{"Cache-Control": {"public, max-age=60"}}, true, false, StoreShared},
		{"authenticated s-maxage", p, 200, http.Header{"Cache-Control": {"s-maxage=60"}}, true, false, StoreShared},
		{"authenticated must-revalidate", p, 200, http.Header{"Cache-Control": {"max-age=60, must-revalidate"}}, true, false, StoreShared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cc := ParseCacheControl(tt.h["Cache-Control"])
			if got := tt.p.Storable(tt.status, tt.h, &cc, tt.auth, tt.reqNS); got != tt.want {
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

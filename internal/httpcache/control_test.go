package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		check func(d Directives) bool
	}{
		{"empty", nil, func(d Directives) bool { return d.MaxAge == Absent && !d.NoStore && !d.Invalid }},
		{"max-age", []string{"max-age=60"}, func(d Directives) bool { return d.MaxAge == 60 }},
		{"quoted max-age", []string{`max-age="60"`}, func(d Directives) bool { return d.MaxAge == 60 && !d.Invalid }},
		{"case and spaces", []string{" Max-Age = 30 , PUBLIC"}, func(d Directives) bool { return d.MaxAge == 30 && d.Public }},
		{"first occurrence wins", []string{"max-age=10", "max-age=20"}, func(d Directives) bool { return d.MaxAge == 10 }},
		{"invalid max-age is stale", []string{"max-age=abc"}, func(d Directives) bool { return d.MaxAge == 0 && d.Invalid }},
		{"negative max-age is stale", []string{"max-age=-5"}, func(d Directives) bool { return d.MaxAge == 0 && d.Invalid }},
		{"empty s-maxage is stale", []string{"s-maxage="}, func(d Directives) bool { return d.SMaxAge == 0 && d.Invalid }},
		{"max-age without value", []string{"max-age"}, func(d Directives) bool { return d.Invalid }},
		{"overflow caps at 2^31", []string{"max-age=99999999999999999999999"}, func(d Directives) bool { return d.MaxAge == 1<<31 }},
		{"s-maxage", []string{"s-maxage=5, max-age=1"}, func(d Directives) bool { return d.SMaxAge == 5 && d.MaxAge == 1 }},
		{"qualified no-cache", []string{`no-cache="Set-Cookie, X-Foo", max-age=5`}, func(d Directives) bool { return d.NoCache && d.MaxAge == 5 }},
		{"qualified private", []string{`private="X-A"`}, func(d Directives) bool { return d.Private }},
		{"quoted comma does not split", []string{`foo="a,max-age=9", max-age=3`}, func(d Directives) bool { return d.MaxAge == 3 }},
		{"unknown ignored", []string{"foo, bar=baz, no-store"}, func(d Directives) bool { return d.NoStore }},
		{"stale windows", []string{"stale-while-revalidate=30, stale-if-error=600"}, func(d Directives) bool {
			return d.StaleWhileRevalidate == 30 && d.StaleIfError == 600
		}},
		{"invalid swr absent", []string{"stale-while-revalidate=x"}, func(d Directives) bool { return d.StaleWhileRevalidate == Absent && !d.Invalid }},
		{"request directives", []string{"no-cache, max-stale, min-fresh=4, only-if-cached"}, func(d Directives) bool {
			return d.NoCache && d.MaxStaleAny && d.MinFresh == 4 && d.OnlyIfCached
		}},
		{"revalidate flags", []string{"must-revalidate,proxy-revalidate,immutable"}, func(d Directives) bool {
			return d.MustRevalidate && d.ProxyRevalidate && d.Immutable
		}},
		{"unterminated quote", []string{`max-age="12`}, func(d Directives) bool { return d.MaxAge == 12 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d := ParseCacheControl(tt.lines); !tt.check(d) {
				t.Errorf("got %+v for %q", d, tt.lines)
			}
		})
	}
}

func TestParseCacheControlAllocs(t *testing.T) {
	lines := []string{`public, max-age=60, stale-while-revalidate=30, no-cache="Set-Cookie"`}
	if n := testing.AllocsPerRun(100, func() { _ = ParseCacheControl(lines) }); n != 0 {
		t.Errorf("got %v allocs, want 0", n)
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a,b", s-maxage=1`, `"`, "=,=,", "max-age=\"", "private=\"\\\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseCacheControl([]string{s, s})
		for _, v := range []int64{d.MaxAge, d.SMaxAge, d.MinFresh, d.MaxStale, d.StaleIfError, d.StaleWhileRevalidate} {
			if v != Absent && (v < 0 || v > 1<<31) {
				t.Fatalf("got delta %d for %q", v, s)
			}
		}
		e := &Entry{Status: 200, Header: http.Header{"Cache-Control": {s}, "Age": {s}, "Expires": {s}, "Date": {s}}}
		p := Policy{DefaultTTL: time.Second, MaxTTL: time.Hour}
		fr := p.Freshness(e, time.Now())
		if fr.Lifetime < 0 || fr.Lifetime > time.Hour {
			t.Fatalf("got lifetime %s for %q", fr.Lifetime, s)
		}
	})
}

func TestParseIMFFixdate(t *testing.T) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Wed, 31 Dec 2025 23:59:59 GMT"} {
		got, ok := parseIMFFixdate(s)
		want, err := http.ParseTime(s)
		if !ok || err != nil || !got.Equal(want) {
			t.Errorf("%q: got %v %t, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "0"} {
		if _, ok := parseIMFFixdate(s); ok {
			t.Errorf("%q: got ok, want false", s)
		}
	}
	h := http.Header{"Date": {"Sunday, 06-Nov-94 08:49:37 GMT"}}
	if _, ok := parseDate(h, "Date"); !ok {
		t.Error("the RFC 850 form was not accepted")
	}
}

func TestParseResponseControl(t *testing.T) {
	tests := []struct {
		name      string
		cc, sc    []string
		surrogate int64
		noStore   bool
	}{
		{"no surrogate-control", []string{"no-store"}, nil, Absent, true},
		{"max-age", nil, []string{"max-age=60"}, 60, false},
		{"max-age overrides no-store", []string{"no-store"}, []string{"max-age=60;portico"}, 60, false},
		{"case-insensitive", nil, []string{"MaX-aGe=60"}, 60, false},
		{"extension first", nil, []string{"foobar, max-age=60"}, 60, false},
		{"stale part ignored", nil, []string{"max-age=60+600"}, 60, false},
		{"no-store", []string{"max-age=60"}, []string{"no-store"}, Absent, true},
		{"no-store for us", []string{"max-age=60"}, []string{"no-store;portico"}, Absent, true},
		{"another device", nil, []string{"max-age=60;cdn"}, Absent, false},
		{"another device's no-store", []string{"max-age=60"}, []string{"no-store;cdn"}, Absent, false},
		{"ours beats untargeted", nil, []string{"max-age=5, max-age=60;portico"}, 60, false},
		{"space before equals, as in Cache-Control", nil, []string{"max-age =100"}, 100, false},
		{"invalid value", nil, []string{"max-age=soon"}, Absent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.cc != nil {
				h["Cache-Control"] = tt.cc
			}
			if tt.sc != nil {
				h["Surrogate-Control"] = tt.sc
			}
			d := ParseResponseControl(h)
			if d.Surrogate != tt.surrogate || d.NoStore != tt.noStore {
				t.Errorf("got surrogate %d no-store %t, want %d %t", d.Surrogate, d.NoStore, tt.surrogate, tt.noStore)
			}
		})
	}
}

func TestParseResponseControlAllocs(t *testing.T) {
	h := http.Header{"Cache-Control": {"public, max-age=60"}, "Surrogate-Control": {"max-age=600;portico, no-store;cdn"}}
	if n := testing.AllocsPerRun(100, func() { _ = ParseResponseControl(h) }); n != 0 {
		t.Errorf("got %.0f allocations, want 0", n)
	}
}

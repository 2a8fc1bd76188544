package httpcache

import (
	"net/http"
	"strings"
	"time"
)

// Absent is the value of a delta-seconds directive that was not given.
const Absent = -1

// maxDelta is the largest delta-seconds value Portico represents: a larger
// one (or one that overflows) counts as 2^31 (RFC 9111 §1.2.2).
const maxDelta = 1 << 31

// Directives are the parsed Cache-Control directives of a request or a
// response. Delta-seconds values are in seconds, Absent when not given.
// Unknown directives are ignored; for a directive given twice the first
// occurrence counts. A qualified no-cache or private (with field names)
// counts as the unqualified form.
type Directives struct {
	MaxAge, SMaxAge                    int64
	MaxStale, MinFresh                 int64
	StaleWhileRevalidate, StaleIfError int64

	NoStore, NoCache, Private, Public bool
	MustRevalidate, ProxyRevalidate   bool
	OnlyIfCached, Immutable           bool
	// MustUnderstand (RFC 9111 §5.2.2.3): store the response only when
	// its status code's caching rules are understood; then no-store is
	// ignored.
	MustUnderstand bool
	// Surrogate is the max-age of the response's Surrogate-Control
	// addressed to this cache (see ParseResponseControl), Absent when none:
	// it takes precedence over every other freshness information.
	Surrogate int64
	// MaxStaleAny is a max-stale without a value (any staleness).
	MaxStaleAny bool
	// Invalid reports a freshness directive (max-age or s-maxage) whose
	// value is not delta-seconds: the response is treated as stale
	// (RFC 9111 §4.2.1).
	Invalid bool
}

// ParseCacheControl parses the Cache-Control field lines of a message (all
// of them, as one list). It does not allocate.
func ParseCacheControl(lines []string) Directives {
	d := Directives{MaxAge: Absent, SMaxAge: Absent, MaxStale: Absent, MinFresh: Absent,
		StaleWhileRevalidate: Absent, StaleIfError: Absent, Surrogate: Absent}
	for _, s := range lines {
		for len(s) > 0 {
			var name, val string
			var hasVal bool
			name, val, hasVal, s = nextDirective(s)
			if name == "" {
				continue
			}
			d.apply(name, val, hasVal)
		}
	}
	return d
}

// nextDirective splits the first directive off s: its name, its value
// (unquoted; escapes kept as sent, which delta-seconds never contain) and
// the rest of s after the following comma.
func nextDirective(s string) (name, val string, hasVal bool, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	s = s[i:]
	i = 0
	for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	name = s[:i]
	s = s[i:]
	i = 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	if len(s) == 0 || s[0] != '=' {
		return name, "", false, skipToComma(s)
	}
	s = s[1:]
	i = 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	if len(s) > 0 && s[0] == '"' {
		j := 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return name, s[1:], true, ""
		}
		return name, s[1:j], true, skipToComma(s[j+1:])
	}
	i = 0
	for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	return name, s[:i], true, skipToComma(s[i:])
}

// skipToComma drops everything up to and including the next comma.
func skipToComma(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[i+1:]
	}
	return ""
}

func (d *Directives) apply(name, val string, hasVal bool) {
	switch {
	case strings.EqualFold(name, "max-age"):
		d.MaxAge = d.delta(d.MaxAge, val, hasVal, true)
	case strings.EqualFold(name, "s-maxage"):
		d.SMaxAge = d.delta(d.SMaxAge, val, hasVal, true)
	case strings.EqualFold(name, "max-stale"):
		if !hasVal {
			d.MaxStaleAny = true
			return
		}
		d.MaxStale = d.delta(d.MaxStale, val, hasVal, false)
	case strings.EqualFold(name, "min-fresh"):
		d.MinFresh = d.delta(d.MinFresh, val, hasVal, false)
	case strings.EqualFold(name, "stale-while-revalidate"):
		d.StaleWhileRevalidate = d.delta(d.StaleWhileRevalidate, val, hasVal, false)
	case strings.EqualFold(name, "stale-if-error"):
		d.StaleIfError = d.delta(d.StaleIfError, val, hasVal, false)
	case strings.EqualFold(name, "no-store"):
		d.NoStore = true
	case strings.EqualFold(name, "no-cache"):
		d.NoCache = true
	case strings.EqualFold(name, "private"):
		d.Private = true
	case strings.EqualFold(name, "public"):
		d.Public = true
	case strings.EqualFold(name, "must-revalidate"):
		d.MustRevalidate = true
	case strings.EqualFold(name, "proxy-revalidate"):
		d.ProxyRevalidate = true
	case strings.EqualFold(name, "only-if-cached"):
		d.OnlyIfCached = true
	case strings.EqualFold(name, "immutable"):
		d.Immutable = true
	case strings.EqualFold(name, "must-understand"):
		d.MustUnderstand = true
	}
}

// delta parses a delta-seconds value for a directive whose current value
// is cur (kept when already set: the first occurrence counts). An invalid
// freshness value makes the message stale (0) and sets Invalid; another
// invalid value leaves the directive absent.
func (d *Directives) delta(cur int64, val string, hasVal, freshness bool) int64 {
	if cur != Absent {
		return cur
	}
	n, ok := parseDelta(val)
	if !hasVal || !ok {
		if freshness {
			d.Invalid = true
			return 0
		}
		return Absent
	}
	return n
}

// parseDelta parses delta-seconds: one or more digits; values past 2^31
// count as 2^31.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// Seconds converts a delta-seconds value (not Absent) to a Duration.
func Seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// SurrogateToken is the device token this cache announces in
// Surrogate-Capability and answers to in Surrogate-Control targets.
const SurrogateToken = "portico"

// SurrogateCapability is the Surrogate-Capability value sent upstream
// (W3C Edge Architecture Specification 1.0).
const SurrogateCapability = SurrogateToken + `="Surrogate/1.0"`

// ParseResponseControl parses the caching directives of a response with
// header h: its Cache-Control, overridden by its Surrogate-Control (W3C
// Edge Architecture Specification 1.0), which addresses caches run for
// the origin such as this one. Surrogate-Control directives targeted at
// SurrogateToken ("max-age=60;portico") count, and untargeted ones when
// none is targeted here; directives targeted at other devices are
// ignored. Its max-age sets Surrogate (and makes a Cache-Control
// no-store irrelevant), its no-store forbids storing. It does not
// allocate.
func ParseResponseControl(h http.Header) Directives {
	d := ParseCacheControl(h["Cache-Control"])
	sc := h["Surrogate-Control"]
	if len(sc) == 0 {
		return d
	}
	var mine, all surrogateDirectives
	mine.maxAge, all.maxAge = Absent, Absent
	for _, s := range sc {
		for len(s) > 0 {
			var name, val string
			var hasVal bool
			name, val, hasVal, s = nextDirective(s)
			target := ""
			if i := strings.IndexByte(name, ';'); i >= 0 {
				name, target = name[:i], name[i+1:]
			} else if i := strings.IndexByte(val, ';'); hasVal && i >= 0 {
				val, target = val[:i], val[i+1:]
			}
			switch {
			case name == "":
			case target == "":
				all.apply(name, val, hasVal)
			case strings.EqualFold(target, SurrogateToken):
				mine.apply(name, val, hasVal)
			}
		}
	}
	sd := all
	if mine.set {
		sd = mine
	}
	switch {
	case sd.noStore:
		d.NoStore = true
	case sd.maxAge != Absent:
		d.Surrogate, d.NoStore = sd.maxAge, false
	}
	return d
}

// surrogateDirectives are the Surrogate-Control directives for one target.
type surrogateDirectives struct {
	maxAge  int64
	noStore bool
	set     bool
}

func (s *surrogateDirectives) apply(name, val string, hasVal bool) {
	switch {
	case strings.EqualFold(name, "no-store"):
		s.noStore, s.set = true, true
	case strings.EqualFold(name, "max-age"):
		// max-age=freshness[+stale]: the stale part is not used.
		if i := strings.IndexByte(val, '+'); i >= 0 {
			val = val[:i]
		}
		if n, ok := parseDelta(val); hasVal && ok && s.maxAge == Absent {
			s.maxAge, s.set = n, true
		}
	}
}

// parseAge reads the Age field. ok is false when it is invalid (RFC 9111
// §5.1): not exactly one non-negative integer (a list, two field lines, a
// sign, a fraction, a parameter); the response is then treated as stale.
// An absent Age is 0 and valid.
func parseAge(h http.Header) (age time.Duration, ok bool) {
	vs := h["Age"]
	switch len(vs) {
	case 0:
		return 0, true
	case 1:
	default:
		return 0, false
	}
	n, ok := parseDelta(strings.TrimSpace(vs[0]))
	if !ok {
		return 0, false
	}
	return Seconds(n), true
}

// parseDate reads an HTTP-date field; ok is false when it is missing or
// invalid.
func parseDate(h http.Header, name string) (time.Time, bool) {
	vs := h[name]
	if len(vs) == 0 {
		return time.Time{}, false
	}
	if t, ok := parseIMFFixdate(vs[0]); ok {
		return t, true
	}
	t, err := http.ParseTime(vs[0])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// parseIMFFixdate parses the preferred HTTP-date form ("Sun, 06 Nov 1994
// 08:49:37 GMT") without the general time.Parse; other forms report false
// and are left to http.ParseTime.
func parseIMFFixdate(s string) (time.Time, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
		s[19] != ':' || s[22] != ':' || s[25:] != " GMT" {
		return time.Time{}, false
	}
	num := func(a string) int {
		n := 0
		for i := 0; i < len(a); i++ {
			if a[i] < '0' || a[i] > '9' {
				return -1
			}
			n = n*10 + int(a[i]-'0')
		}
		return n
	}
	day, year := num(s[5:7]), num(s[12:16])
	hh, mm, ss := num(s[17:19]), num(s[20:22]), num(s[23:25])
	month := 0
	for i, m := range [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"} {
		if s[8:11] == m {
			month = i + 1
			break
		}
	}
	if day < 1 || day > 31 || year < 0 || month == 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hh, mm, ss, 0, time.UTC), true
}

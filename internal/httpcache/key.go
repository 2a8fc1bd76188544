package httpcache

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Cache keys have the form
//
//	<route> "\n" <path> "?" <query> "\n" <host> ["\n" <part>]... [variant]
//
// where path is the normalised request path as routed, query the
// normalised query (see NormalizeQuery), and the parts are the configured
// key headers ("h:<Name>=<value>") and, for responses stored per consumer,
// "c=<consumer id>". A response with Vary is stored under the base key
// plus "\nv=<epoch>:<hash of the request's values>", and the base key holds
// a marker entry (see NewVaryMarker) naming the Vary headers and the
// epoch. Keys hold printable ASCII and "\n" only: long or odd values are
// replaced by their SHA-256.
//
// Purging one route is DeletePrefix(route+"\n"), a path prefix
// DeletePrefix(route+"\n"+pathPrefix), one URL DeletePrefix(URLPrefix(...)).

// maxKeyPart is the longest header value or consumer id kept verbatim in
// a key, and maxHost the longest host.
const (
	maxKeyPart = 128
	maxHost    = 255
)

// KeyRules configure which parts of a request make its cache key.
type KeyRules struct {
	// Route is the route's name, the first part of every key.
	Route string
	// Include lists the only query parameters in the key; Exclude lists
	// parameters left out. At most one is set; with neither, every
	// parameter counts.
	Include, Exclude []string
	// Headers are request header names whose values join the key.
	Headers []string
}

// Keyer builds the cache keys of one route.
type Keyer struct {
	route            string
	include, exclude map[string]bool
	headers          []string
}

// NewKeyer compiles r.
func NewKeyer(r KeyRules) *Keyer {
	k := &Keyer{route: r.Route}
	if len(r.Include) > 0 {
		k.include = make(map[string]bool, len(r.Include))
		for _, n := range r.Include {
			k.include[n] = true
		}
	}
	if len(r.Exclude) > 0 {
		k.exclude = make(map[string]bool, len(r.Exclude))
		for _, n := range r.Exclude {
			k.exclude[n] = true
		}
	}
	for _, h := range r.Headers {
		k.headers = append(k.headers, textproto.CanonicalMIMEHeaderKey(h))
	}
	return k
}

// Query normalises a raw query under the route's include/exclude rules.
func (k *Keyer) Query(raw string) string { return normalizeQuery(raw, k.include, k.exclude) }

// Strips reports whether the route's rules leave query parameters out of
// the key (include or exclude is set).
func (k *Keyer) Strips() bool { return k.include != nil || k.exclude != nil }

// StripQuery returns raw without the parameters Query leaves out of the
// key, named as Query reads them (unescaped: "ut%6D" is "utm"), so the
// upstream of a request answered through the cache sees no parameter the
// key does not hold. Everything kept is kept byte for byte, in order. It
// reports whether it removed anything.
func (k *Keyer) StripQuery(raw string) (string, bool) {
	if raw == "" || !k.Strips() {
		return raw, false
	}
	var b strings.Builder
	removed := false
	for rest := raw; ; {
		part, next, more := strings.Cut(rest, "&")
		if part != "" && k.dropped(part) {
			removed = true
		} else if part != "" {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(part)
		}
		if !more {
			break
		}
		rest = next
	}
	if !removed {
		return raw, false
	}
	return b.String(), true
}

// dropped reports whether Query leaves the raw pair part out of the key.
func (k *Keyer) dropped(part string) bool {
	name, _, _ := strings.Cut(part, "=")
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	return k.include != nil && !k.include[name] || k.exclude != nil && k.exclude[name]
}

// Base returns the base key of a request for path (normalised) and
// query (from Query) on host, with header h; consumer is "" for the
// shared key, or the consumer id for a response stored per consumer.
func (k *Keyer) Base(path, query, host string, h http.Header, consumer string) string {
	var b strings.Builder
	n := len(k.route) + len(path) + len(query) + len(host) + 3
	for _, name := range k.headers {
		n += len(name) + 8
		for _, v := range h[name] {
			n += len(v) + 2
		}
	}
	if consumer != "" {
		n += len(consumer) + 3
	}
	b.Grow(min(n, 4096))
	b.WriteString(k.route)
	b.WriteByte('\n')
	writePart(&b, path, -1) // verbatim, so that path prefixes purge
	b.WriteByte('?')
	writePart(&b, query, -1)
	b.WriteByte('\n')
	writePart(&b, host, maxHost)
	for _, name := range k.headers {
		b.WriteString("\nh:")
		b.WriteString(name)
		b.WriteByte('=')
		writePart(&b, joinValues(h[name]), maxKeyPart)
	}
	if consumer != "" {
		b.WriteString("\nc=")
		writePart(&b, consumer, maxKeyPart)
	}
	return b.String()
}

// URLPrefix is the prefix of every key of one URL of a route: all hosts,
// key headers, consumers and variants.
func URLPrefix(route, path, query string) string {
	return route + "\n" + path + "?" + query + "\n"
}

// writePart writes v, or its hash when it is longer than limit (-1: no
// limit) or not printable ASCII.
func writePart(b *strings.Builder, v string, limit int) {
	if (limit < 0 || len(v) <= limit) && printable(v) {
		b.WriteString(v)
		return
	}
	sum := sha256.Sum256([]byte(v))
	b.WriteString("sha256:")
	var buf [32]byte
	hex.Encode(buf[:], sum[:16])
	b.Write(buf[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// joinValues is the value of a header for keys and Vary: its lines
// joined with ", ".
func joinValues(vs []string) string {
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return strings.TrimSpace(vs[0])
	}
	return strings.TrimSpace(strings.Join(vs, ", "))
}

// NormalizeQuery returns raw with its parameters in a canonical order
// (sorted by name; repeated names keep their relative order) and
// canonical escaping, without the names exclude lists, or with only the
// names include lists (at most one of the two is non-nil).
func NormalizeQuery(raw string, include, exclude []string) string {
	return NewKeyer(KeyRules{Include: include, Exclude: exclude}).Query(raw)
}

type queryPair struct{ name, value string }

func normalizeQuery(raw string, include, exclude map[string]bool) string {
	if raw == "" {
		return ""
	}
	if include == nil && exclude == nil && simpleQuery(raw) {
		return raw
	}
	var pairs []queryPair
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		if include != nil && !include[name] || exclude != nil && exclude[name] {
			continue
		}
		pairs = append(pairs, queryPair{name, value})
	}
	slices.SortStableFunc(pairs, func(a, b queryPair) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return b.String()
}

// simpleQuery reports whether raw is already canonical: "name=value"
// pairs of unreserved characters, joined by "&", sorted by name.
func simpleQuery(raw string) bool {
	prev := ""
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		eq := strings.IndexByte(part, '=')
		if eq <= 0 {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
			case c == '=' && i == eq:
			default:
				return false
			}
		}
		if name := part[:eq]; name >= prev {
			prev = name
		} else {
			return false
		}
	}
	return true
}

// IsMarker reports whether e is a Vary marker rather than a response.
func IsMarker(e *Entry) bool { return e.Status == 0 }

// NewVaryMarker returns the marker stored at a base key when the response
// there varies on names: it lists the names and a new epoch, so that
// variants stored under an older marker are never found again once the
// marker is replaced (after an invalidation).
func NewVaryMarker(names []string) *Entry {
	// VaryValues is empty but as long as VaryNames (Entry.Size and the
	// codec pair them).
	return &Entry{VaryNames: names, VaryValues: make([]string, len(names)),
		Body: []byte(strconv.FormatUint(rand.Uint64(), 36))}
}

// VaryNames returns the canonical header names listed by h's Vary fields,
// without duplicates, in order.
func VaryNames(h http.Header) []string {
	var names []string
	for _, v := range h["Vary"] {
		for v != "" {
			var part string
			part, v = cutComma(v)
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name := textproto.CanonicalMIMEHeaderKey(part)
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// VaryValues returns the request's values for names.
func VaryValues(names []string, h http.Header) []string {
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = joinValues(h[n])
	}
	return vals
}

// VariantKey is the key of the variant for a request with header h,
// under base whose marker is m.
func VariantKey(base string, m *Entry, h http.Header) string {
	d := sha256.New()
	for _, n := range m.VaryNames {
		_, _ = d.Write([]byte(joinValues(h[n])))
		_, _ = d.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	d.Sum(sum[:0])
	var buf [32]byte
	hex.Encode(buf[:], sum[:16])
	return base + "\nv=" + string(m.Body) + ":" + string(buf[:])
}

// VaryMatches reports whether the stored response e was stored for a
// request whose values of e's Vary headers equal h's.
func VaryMatches(e *Entry, h http.Header) bool {
	if len(e.VaryNames) != len(e.VaryValues) {
		return false
	}
	for i, n := range e.VaryNames {
		if joinValues(h[n]) != e.VaryValues[i] {
			return false
		}
	}
	return true
}

// SameNames reports whether the marker m lists exactly names.
func SameNames(m *Entry, names []string) bool { return slices.Equal(m.VaryNames, names) }

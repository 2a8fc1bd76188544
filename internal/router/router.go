// Package router matches requests to routes with a table compiled once per
// config snapshot.
//
// # Flow
//
// Compile turns a list of Rules into an immutable Table: it normalizes the
// route paths, compiles the regular expressions, and sorts every candidate
// list, so that Lookup parses nothing, compiles nothing and allocates
// nothing for exact and prefix matches. A Table is safe for concurrent use.
// The gateway calls, per request:
//
//	raw, err := router.RequestPath(r.URL)   // 400 on error
//	norm, err := router.NormalizePath(raw)  // 400 on error
//	m, res := table.Lookup(r, norm)          // 404, 405 or a route
//
// # Hosts
//
// The Host header is reduced to a canonical name: the port and IPv6
// brackets are removed ("[::1]:8080" is "::1"), one trailing dot is
// removed, and ASCII letters are lower-cased. Configured hosts are reduced
// the same way. Rules are split into tables by host:
//
//  1. the exact host ("api.example.com");
//  2. the one-label wildcard ("*.example.com" takes "a.example.com", but
//     neither "a.b.example.com" nor "example.com");
//  3. the rules with no hosts, which take any host.
//
// A request is tried against each table that exists for its host, in that
// order, and the first full match wins. So a request whose host has its own
// routes, none of which matches the path, falls back to the wildcard and then
// to the host-less routes, as in Kong and Envoy.
//
// # Paths
//
// A route path is "/prefix", "=/exact" or "~regex". Within one host table
// the priority is deterministic:
//
//  1. exact paths, compared with the whole normalized path;
//  2. prefixes, longest first. A prefix matches on segment boundaries:
//     "/api/orders" matches "/api/orders", "/api/orders/" and
//     "/api/orders/7", not "/api/ordersX". A prefix written with a trailing
//     slash, "/api/", matches "/api/" and "/api/x" but not "/api". "/"
//     matches every path;
//  3. regular expressions (RE2), in rule order. A regexp is anchored at the
//     start of the path but not at its end: "~/users/[0-9]+" matches
//     "/users/7/orders"; add "$" to anchor the end. It is matched against
//     the normalized escaped path, so captures hold escaped text.
//
// Exact and prefix paths of rules are normalized with NormalizePath, so a
// rule "/api/orders" and a request "/api/ord%65rs" meet. Exact lookup is a
// map lookup; prefix lookup walks a segment trie with one map lookup per
// request path segment. Neither depends on the number of rules. Regular
// expressions are tried one after another, so their cost grows with their
// number; prefer prefixes.
//
// # Conditions
//
// Several rules may share a path. Their candidates are tried with the rules
// with more conditions first (one for a method list, plus one per header and
// per query condition), then in rule order. A rule matches when:
//
//   - Headers: every listed header is present with exactly the listed value
//     (one of its values, when it appears more than once). Names are
//     case-insensitive. The Host header cannot be a condition; use Hosts.
//   - Query: every listed parameter appears in the raw query with exactly
//     the listed value, after decoding "%XX" and "+" on both sides of "=".
//     The query is only read when a candidate has query conditions.
//   - Methods: the request method is one of them; a rule allowing GET also
//     takes HEAD. A rule without methods takes every method but CONNECT and
//     TRACE, which only rules listing them take.
//
// When every candidate of a path fails on headers or query, the lookup goes
// on with the next shorter prefix, then the regexps, then the next host
// table, so a request that fails a condition reaches a more general route.
// A method mismatch goes on the same way, but is remembered: when no rule
// matches fully and some rule failed only on its method, Lookup returns
// MethodNotAllowed with Allow listing the methods of those rules (for a rule
// without methods: DELETE, GET, HEAD, OPTIONS, PATCH, POST and PUT).
//
// # Path normalization
//
// NormalizePath is a security boundary: routing, strip_prefix and the
// upstream request all use its output, so a path the gateway routes is the
// path the upstream sees. Its input is the path as the client sent it
// (RequestPath), not as net/url escaped it again. It:
//
//   - accepts only paths that start with "/"; the empty path is "/";
//   - rejects with ErrEncodedSeparator an encoded "/" or "\" ("%2F", "%5C",
//     either case), which upstreams disagree about;
//   - rejects with ErrBadPath what a lenient backend could read as another
//     path: an encoded percent sign followed by two hex digits, raw or
//     encoded ("%252e", "%25%32%65"), which a backend that decodes twice
//     reads as an escape; escapes whose bytes are not valid UTF-8 in
//     shortest form ("%C0%AE", "%E0%80%AE", a lone "%80", a truncated
//     sequence, a surrogate), which old decoders read as "." or "/"; a raw
//     byte above 0x7f (RFC 3986 allows only ASCII); a ";", raw or encoded,
//     after which Tomcat and Spring strip the segment's parameters; an
//     encoded control byte ("%00" to "%1F", "%7F") and a raw one (below
//     0x20, or 0x7f); a raw "#" (a fragment is never sent); a raw "\"; and
//     an invalid escape ("%zz", "%4");
//   - decodes escapes of unreserved characters (letters, digits, "-", ".",
//     "_", "~") and upper-cases the hex digits of the other escapes, so
//     "%2e%2e" is ".." and "%3a" is "%3A";
//   - escapes the raw characters that RFC 3986 leaves out of paths and that
//     net/url escapes too (space, '"', "<", ">", "^", "`", "{", "|", "}");
//   - merges repeated slashes, removes "." segments and resolves ".."
//     segments, never above the root ("/../a" is "/a"); a path that ended
//     with "/" or with a dot segment ends with "/" ("/a/b/.." is "/a/").
//
// An accepted path therefore decodes, once, to valid UTF-8 without control
// bytes or ";", and decoding it a second time changes nothing. Normalization
// is idempotent, and a canonical path (the common case) is returned without
// allocating.
//
// # Methods that need a listing
//
// A rule without Methods takes every method but CONNECT and TRACE: the
// gateway never opens a tunnel, and TRACE reflects the request, cookies and
// credentials included. A request with either method matches only rules
// that list it; otherwise the lookup ends in MethodNotAllowed.
package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// Rule is one route's match conditions and the value returned on a match.
type Rule[T any] struct {
	// Value is returned in Match.Value when the rule matches.
	Value T
	// Hosts are exact names ("api.example.com") or one-label wildcards
	// ("*.example.com"), compared case-insensitively; IPv6 literals may be
	// written with or without brackets. No port. Empty means any host.
	Hosts []string
	// Methods are HTTP methods in upper case. Empty means any method but
	// CONNECT and TRACE.
	Methods []string
	// Paths are "/prefix", "=/exact" or "~regex" (RE2, anchored at the
	// start). At least one.
	Paths []string
	// Headers must be present with exactly these values; names are
	// case-insensitive.
	Headers map[string]string
	// Query parameters must be present with exactly these values.
	Query map[string]string
}

// PathKind says which kind of rule path matched.
type PathKind int

// The kinds of rule paths.
const (
	Exact PathKind = iota + 1
	Prefix
	Regex
)

// String returns "exact", "prefix" or "regex".
func (k PathKind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Prefix:
		return "prefix"
	case Regex:
		return "regex"
	}
	return "PathKind(" + strconv.Itoa(int(k)) + ")"
}

// Result is the outcome of a Lookup.
type Result int

// The outcomes of a Lookup. The zero Result is NotFound.
const (
	NotFound Result = iota
	Matched
	MethodNotAllowed
)

// String returns "not found", "matched" or "method not allowed".
func (r Result) String() string {
	switch r {
	case NotFound:
		return "not found"
	case Matched:
		return "matched"
	case MethodNotAllowed:
		return "method not allowed"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Capture is one named capture group of a regex match.
type Capture struct{ Name, Value string }

// Match describes how a request matched.
type Match[T any] struct {
	// Value is the matching rule's Value.
	Value T
	// Kind is the kind of the path that matched.
	Kind PathKind
	// Prefix is, for Prefix matches, the matched prefix as normalized at
	// Compile ("/api/orders", "/api/", "/"); the request path starts with it.
	Prefix string
	// Captures are the named groups of a Regex match, in the order they
	// appear in the expression, with "" for a group that did not take part.
	// Nil for other kinds.
	Captures []Capture
	// Allow is, for MethodNotAllowed, the methods the near-miss rules
	// allow: sorted, separated by ", ", with HEAD wherever GET is.
	Allow string
}

// CompileError is a rule Compile rejects.
type CompileError struct {
	// Rule is the index of the rule in the slice given to Compile.
	Rule int
	// Field is "path", "host", "method", "header" or "query"; empty for a
	// problem with the rule as a whole.
	Field string
	// Value is the offending path, host, method, header name or query
	// parameter name, as written.
	Value string
	// Err says what is wrong.
	Err error
}

// Error returns "rule N: FIELD "VALUE": problem".
func (e *CompileError) Error() string {
	s := "rule " + strconv.Itoa(e.Rule) + ": "
	if e.Field != "" {
		s += e.Field + " " + strconv.Quote(e.Value) + ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *CompileError) Unwrap() error { return e.Err }

// anyMethods are the methods a rule without Methods is said to allow in the
// Allow header of a MethodNotAllowed: the methods of RFC 9110 and RFC 5789
// but CONNECT and TRACE. Such a rule takes any other method too.
var anyMethods = []string{
	http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut,
}

// isExplicitMethod reports whether only rules listing method take it:
// CONNECT asks for a tunnel, which the gateway never opens, and TRACE
// echoes the request, credentials included, back to the client.
func isExplicitMethod(method string) bool {
	return method == http.MethodConnect || method == http.MethodTrace
}

// maxMethods is the number of distinct methods a Table supports: each has a
// bit in a uint64 so that a 405 can collect the allowed methods without
// allocating until it answers.
const maxMethods = 64

var (
	errNoPaths     = errors.New("at least one path is required")
	errEmptyPath   = errors.New("must not be empty")
	errPathSlash   = errors.New(`must start with "/", "=/" or "~"`)
	errMethod      = errors.New("must be an upper-case HTTP method token")
	errHeaderName  = errors.New("must be a header name token")
	errHeaderHost  = errors.New("host is matched with hosts, not a header condition")
	errQueryName   = errors.New("must not be empty")
	errManyMethods = fmt.Errorf("more than %d distinct methods", maxMethods)
)

// Table is a compiled, immutable set of rules. Its methods are safe for
// concurrent use.
type Table[T any] struct {
	exactHosts map[string]*hostTable[T]
	wildHosts  map[string]*hostTable[T] // keyed by the name after "*."
	anyHost    *hostTable[T]
	methods    []string // sorted; bit i of a rule's mask is methods[i]
}

// hostTable holds the rules of one host (or of any host).
type hostTable[T any] struct {
	exact  map[string][]*rule[T]
	root   *node[T] // nil without prefix rules
	regexp []*regexEntry[T]
}

// regexEntry is one distinct regular expression and the rules using it.
type regexEntry[T any] struct {
	re    *regexp.Regexp
	names []string // re.SubexpNames(); names[0] is the whole match
	named int      // number of non-empty names
	rules []*rule[T]
}

// rule is a compiled Rule.
type rule[T any] struct {
	index   int
	value   T
	methods []string // nil: any method but CONNECT and TRACE; includes HEAD when GET is listed
	mask    uint64   // bits of methods (of anyMethods when nil) in Table.methods
	headers []pair   // canonical names, sorted
	query   []pair   // sorted
	weight  int      // number of conditions, for ordering candidates
}

type pair struct{ name, value string }

// Compile checks and compiles rules into a Table. All parsing and regexp
// compilation happens here. The error joins one *CompileError per problem
// found, naming the rule index and the offending path, host, method or
// condition.
func Compile[T any](rules []Rule[T]) (*Table[T], error) {
	t := &Table[T]{}
	var errs []error
	methodSet := map[string]bool{}
	compiled := make([]*rule[T], len(rules))
	for i := range rules {
		rl, err := compileRule(i, &rules[i])
		if err != nil {
			errs = append(errs, err)
		}
		for _, m := range rl.allowed() {
			methodSet[m] = true
		}
		compiled[i] = rl
	}
	t.methods = slices.Sorted(func(yield func(string) bool) {
		for m := range methodSet {
			if !yield(m) {
				return
			}
		}
	})
	if len(t.methods) > maxMethods {
		errs = append(errs, errManyMethods)
	}
	// Hosts and paths are checked even when conditions were not, so that
	// one Compile reports every problem; the table is dropped on error.
	b := builder[T]{t: t, regexps: map[string]*regexp.Regexp{}}
	for i, rl := range compiled {
		for _, m := range rl.allowed() {
			j, _ := slices.BinarySearch(t.methods, m)
			rl.mask |= 1 << j
		}
		if err := b.add(rl, &rules[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, ht := range t.exactHosts {
		ht.finish()
	}
	for _, ht := range t.wildHosts {
		ht.finish()
	}
	if t.anyHost != nil {
		t.anyHost.finish()
	}
	return t, nil
}

// compileRule checks a rule's conditions; its paths and hosts are checked
// by the builder. It returns the rule even with an error, for the builder
// to check the rest.
func compileRule[T any](i int, r *Rule[T]) (*rule[T], error) {
	rl := &rule[T]{index: i, value: r.Value}
	var errs []error
	if len(r.Paths) == 0 {
		errs = append(errs, &CompileError{Rule: i, Err: errNoPaths})
	}
	get := false
	for _, m := range r.Methods {
		if !httpsyntax.IsToken(m) || strings.ToUpper(m) != m {
			errs = append(errs, &CompileError{Rule: i, Field: "method", Value: m, Err: errMethod})
			continue
		}
		get = get || m == http.MethodGet
		if !slices.Contains(rl.methods, m) {
			rl.methods = append(rl.methods, m)
		}
	}
	if get && !slices.Contains(rl.methods, http.MethodHead) {
		rl.methods = append(rl.methods, http.MethodHead)
	}
	for name, v := range r.Headers {
		switch {
		case !httpsyntax.IsToken(name):
			errs = append(errs, &CompileError{Rule: i, Field: "header", Value: name, Err: errHeaderName})
		case strings.EqualFold(name, "Host"):
			errs = append(errs, &CompileError{Rule: i, Field: "header", Value: name, Err: errHeaderHost})
		default:
			rl.headers = append(rl.headers, pair{textproto.CanonicalMIMEHeaderKey(name), v})
		}
	}
	for name, v := range r.Query {
		if name == "" {
			errs = append(errs, &CompileError{Rule: i, Field: "query", Value: name, Err: errQueryName})
			continue
		}
		rl.query = append(rl.query, pair{name, v})
	}
	byName := func(a, b pair) int { return cmp.Compare(a.name, b.name) }
	slices.SortFunc(rl.headers, byName)
	slices.SortFunc(rl.query, byName)
	rl.weight = len(rl.headers) + len(rl.query)
	if len(rl.methods) > 0 {
		rl.weight++
	}
	return rl, errors.Join(errs...)
}

// allowed returns the methods rl is listed with in an Allow header.
func (rl *rule[T]) allowed() []string {
	if rl.methods == nil {
		return anyMethods
	}
	return rl.methods
}

// builder collects compiled rules into host tables.
type builder[T any] struct {
	t       *Table[T]
	regexps map[string]*regexp.Regexp // compiled once per distinct source
}

// add inserts rl under each of its hosts and paths.
func (b *builder[T]) add(rl *rule[T], r *Rule[T]) error {
	var errs []error
	var tables []*hostTable[T]
	for _, h := range r.Hosts {
		name, wild, err := parseRuleHost(h)
		if err != nil {
			errs = append(errs, &CompileError{Rule: rl.index, Field: "host", Value: h, Err: err})
			continue
		}
		m := &b.t.exactHosts
		if wild {
			m = &b.t.wildHosts
		}
		if *m == nil {
			*m = map[string]*hostTable[T]{}
		}
		ht := (*m)[name]
		if ht == nil {
			ht = &hostTable[T]{}
			(*m)[name] = ht
		}
		if !slices.Contains(tables, ht) {
			tables = append(tables, ht)
		}
	}
	if len(r.Hosts) == 0 {
		if b.t.anyHost == nil {
			b.t.anyHost = &hostTable[T]{}
		}
		tables = append(tables, b.t.anyHost)
	}
	for _, p := range r.Paths {
		if err := b.addPath(tables, rl, p); err != nil {
			errs = append(errs, &CompileError{Rule: rl.index, Field: "path", Value: p, Err: err})
		}
	}
	return errors.Join(errs...)
}

func (b *builder[T]) addPath(tables []*hostTable[T], rl *rule[T], p string) error {
	switch {
	case p == "":
		return errEmptyPath
	case p[0] == '~':
		src := p[1:]
		if src == "" {
			return errEmptyPath
		}
		re := b.regexps[src]
		if re == nil {
			var err error
			re, err = regexp.Compile("^(?:" + src + ")")
			if err != nil {
				return fmt.Errorf("compile regular expression: %w", err)
			}
			b.regexps[src] = re
		}
		for _, ht := range tables {
			ht.addRegexp(re, rl)
		}
		return nil
	}
	exact := p[0] == '='
	if exact {
		p = p[1:]
	}
	if p == "" || p[0] != '/' {
		return errPathSlash
	}
	norm, err := NormalizePath(p)
	if err != nil {
		return err
	}
	for _, ht := range tables {
		switch {
		case exact:
			if ht.exact == nil {
				ht.exact = map[string][]*rule[T]{}
			}
			if !slices.Contains(ht.exact[norm], rl) {
				ht.exact[norm] = append(ht.exact[norm], rl)
			}
		default:
			if ht.root == nil {
				ht.root = newNode[T]("")
			}
			ht.root.insert(norm, rl)
		}
	}
	return nil
}

func (ht *hostTable[T]) addRegexp(re *regexp.Regexp, rl *rule[T]) {
	for _, e := range ht.regexp {
		if e.re == re {
			if !slices.Contains(e.rules, rl) {
				e.rules = append(e.rules, rl)
			}
			return
		}
	}
	e := &regexEntry[T]{re: re, names: re.SubexpNames(), rules: []*rule[T]{rl}}
	for _, n := range e.names[1:] {
		if n != "" {
			e.named++
		}
	}
	ht.regexp = append(ht.regexp, e)
}

func (ht *hostTable[T]) finish() {
	for _, rs := range ht.exact {
		sortCandidates(rs)
	}
	if ht.root != nil {
		ht.root.finish(nil)
	}
	for _, e := range ht.regexp {
		sortCandidates(e.rules)
	}
}

// sortCandidates orders the rules sharing one path: more conditions first,
// then rule order.
func sortCandidates[T any](rs []*rule[T]) {
	slices.SortStableFunc(rs, func(a, b *rule[T]) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
}

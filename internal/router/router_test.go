package router

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lookupCase is one request against a table and the expected outcome.
type lookupCase struct {
	name   string
	method string // default GET
	host   string // default "example.net"
	target string // path and query, as on the request line
	header http.Header
	res    Result // default Matched
	want   string // the matched rule's Value
	kind   PathKind
	prefix string
	caps   []Capture
	allow  string
}

// runLookupCases compiles rules and checks each case against the table.
func runLookupCases(t *testing.T, rules []Rule[string], tests []lookupCase) {
	t.Helper()
	table, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, tt.target, nil)
			r.Host = "example.net"
			if tt.host != "" {
				r.Host = tt.host
			}
			if tt.host == "-" {
				r.Host = ""
			}
			for k, vs := range tt.header {
				r.Header[http.CanonicalHeaderKey(k)] = vs
			}
			path, err := NormalizePath(r.URL.EscapedPath())
			if err != nil {
				t.Fatalf("NormalizePath(%q): %v", r.URL.EscapedPath(), err)
			}
			m, res := table.Lookup(r, path)
			wantRes := tt.res
			if wantRes == NotFound && tt.want != "" {
				wantRes = Matched
			}
			if res != wantRes {
				t.Fatalf("%s %s (host %q): got %v (%q), want %v", method, tt.target, r.Host, res, m.Value, wantRes)
			}
			if m.Value != tt.want {
				t.Errorf("%s %s: got route %q, want %q", method, tt.target, m.Value, tt.want)
			}
			if res != Matched {
				if m.Allow != tt.allow {
					t.Errorf("%s %s: got Allow %q, want %q", method, tt.target, m.Allow, tt.allow)
				}
				return
			}
			if tt.kind != 0 && m.Kind != tt.kind {
				t.Errorf("%s %s: got kind %v, want %v", method, tt.target, m.Kind, tt.kind)
			}
			if m.Prefix != tt.prefix {
				t.Errorf("%s %s: got prefix %q, want %q", method, tt.target, m.Prefix, tt.prefix)
			}
			if !slices.Equal(m.Captures, tt.caps) {
				t.Errorf("%s %s: got captures %q, want %q", method, tt.target, m.Captures, tt.caps)
			}
		})
	}
}

func TestLookupPathPriority(t *testing.T) {
	rules := []Rule[string]{
		{Value: "exact", Paths: []string{"=/api/orders"}},
		{Value: "orders", Paths: []string{"/api/orders"}},
		{Value: "api-slash", Paths: []string{"/api/"}},
		{Value: "root", Paths: []string{"/"}},
		{Value: "deep", Paths: []string{"/a/b/c/d"}},
		{Value: "a", Paths: []string{"/a"}},
		{Value: "normalized-rule", Paths: []string{"//norm/./x/../ok%2d"}},
		{Value: "shadowed-regex", Paths: []string{"~/re"}},
	}
	tests := []lookupCase{
		{name: "exact beats prefix", target: "/api/orders", want: "exact", kind: Exact},
		{name: "exact with query", target: "/api/orders?x=1", want: "exact", kind: Exact},
		{name: "escaped request meets rule", target: "/api/ord%65rs", want: "exact", kind: Exact},
		{name: "prefix with trailing slash", target: "/api/orders/", want: "orders", kind: Prefix, prefix: "/api/orders"},
		{name: "prefix below", target: "/api/orders/7", want: "orders", kind: Prefix, prefix: "/api/orders"},
		{name: "prefix on segment boundary only", target: "/api/ordersX", want: "api-slash", kind: Prefix, prefix: "/api/"},
		{name: "slash prefix takes its directory", target: "/api/", want: "api-slash", kind: Prefix, prefix: "/api/"},
		{name: "slash prefix not without slash", target: "/api", want: "root", kind: Prefix, prefix: "/"},
		{name: "catch-all", target: "/", want: "root", kind: Prefix, prefix: "/"},
		{name: "catch-all deep", target: "/x/y/z", want: "root", kind: Prefix, prefix: "/"},
		{name: "longest prefix", target: "/a/b/c/d/e", want: "deep", kind: Prefix, prefix: "/a/b/c/d"},
		{name: "shorter prefix through trie", target: "/a/b/c", want: "a", kind: Prefix, prefix: "/a"},
		{name: "shorter prefix with trailing slash", target: "/a/b/c/", want: "a", kind: Prefix, prefix: "/a"},
		{name: "prefix partial segment", target: "/a/b/c/dd", want: "a", kind: Prefix, prefix: "/a"},
		{name: "traversal resolved before matching", target: "/api/x/../orders", want: "exact", kind: Exact},
		{name: "rule path normalized", target: "/norm/ok-/1", want: "normalized-rule", kind: Prefix, prefix: "/norm/ok-"},
		{name: "catch-all shadows regex", target: "/re", want: "root", kind: Prefix, prefix: "/"},
	}
	runLookupCases(t, rules, tests)
}

func TestLookupRegex(t *testing.T) {
	rules := []Rule[string]{
		{Value: "user", Paths: []string{"~/users/(?P<id>[0-9]+)"}},
		{Value: "user-any", Paths: []string{"~/users/.+"}},
		{Value: "files", Paths: []string{"/files"}},
		{Value: "files-re", Paths: []string{"~/files/(?P<name>.*)"}},
		{Value: "optional", Paths: []string{"~/opt/(?P<a>x)?(?P<b>y)$"}},
		{Value: "unnamed", Paths: []string{"~/n/([a-z]+)/(?P<tail>.*)"}},
		{Value: "case", Paths: []string{"~(?i)/CASE"}},
	}
	tests := []lookupCase{
		{name: "capture", target: "/users/42", want: "user", kind: Regex, caps: []Capture{{"id", "42"}}},
		{name: "anchored at start only", target: "/users/42/orders", want: "user", kind: Regex, caps: []Capture{{"id", "42"}}},
		{name: "rule order", target: "/users/abc", want: "user-any", kind: Regex},
		{name: "anchored at start", target: "/xusers/1", res: NotFound},
		{name: "prefix beats regex", target: "/files/a", want: "files", kind: Prefix, prefix: "/files"},
		{name: "group that did not take part", target: "/opt/y", want: "optional", kind: Regex, caps: []Capture{{"a", ""}, {"b", "y"}}},
		{name: "end anchor", target: "/opt/yy", res: NotFound},
		{name: "unnamed groups left out", target: "/n/abc/d%20e", want: "unnamed", kind: Regex, caps: []Capture{{"tail", "d%20e"}}},
		{name: "flags scoped to the rule", target: "/case", want: "case", kind: Regex},
		{name: "no match", target: "/nothing", res: NotFound},
	}
	runLookupCases(t, rules, tests)
}

func TestLookupHosts(t *testing.T) {
	rules := []Rule[string]{
		{Value: "exact-host", Hosts: []string{"api.example.com"}, Paths: []string{"/v1"}},
		{Value: "wild", Hosts: []string{"*.example.com"}, Paths: []string{"/v1", "/wild"}},
		{Value: "any", Paths: []string{"/v1", "/any"}},
		{Value: "ipv6", Hosts: []string{"[::1]"}, Paths: []string{"/v1"}},
		{Value: "upper-config", Hosts: []string{"Shop.Example.COM."}, Paths: []string{"/v1"}},
		{Value: "host-hdr", Hosts: []string{"h.example.org"}, Paths: []string{"/h"}, Headers: map[string]string{"X-H": "1"}},
		{Value: "any-h", Paths: []string{"/h"}},
		{Value: "host-get", Hosts: []string{"m.example.org"}, Paths: []string{"/m"}, Methods: []string{"GET"}},
		{Value: "any-m", Paths: []string{"/m"}},
		{Value: "ipv4", Hosts: []string{"10.0.0.1"}, Paths: []string{"/v1"}},
	}
	tests := []lookupCase{
		{name: "exact host", host: "api.example.com", target: "/v1", want: "exact-host", kind: Prefix, prefix: "/v1"},
		{name: "port and case", host: "API.Example.com:8443", target: "/v1", want: "exact-host", kind: Prefix, prefix: "/v1"},
		{name: "trailing dot", host: "api.example.com.", target: "/v1", want: "exact-host", kind: Prefix, prefix: "/v1"},
		{name: "trailing dot and port", host: "api.example.com.:80", target: "/v1", want: "exact-host", kind: Prefix, prefix: "/v1"},
		{name: "wildcard one label", host: "a.example.com", target: "/v1", want: "wild", kind: Prefix, prefix: "/v1"},
		{name: "wildcard not two labels", host: "a.b.example.com", target: "/v1", want: "any", kind: Prefix, prefix: "/v1"},
		{name: "wildcard not apex", host: "example.com", target: "/v1", want: "any", kind: Prefix, prefix: "/v1"},
		{name: "wildcard not empty label", host: ".example.com", target: "/v1", want: "any", kind: Prefix, prefix: "/v1"},
		{name: "exact falls back to wildcard", host: "api.example.com", target: "/wild/x", want: "wild", kind: Prefix, prefix: "/wild"},
		{name: "exact falls back to any host", host: "api.example.com", target: "/any", want: "any", kind: Prefix, prefix: "/any"},
		{name: "unknown host", host: "other.org", target: "/v1", want: "any", kind: Prefix, prefix: "/v1"},
		{name: "unknown host misses host routes", host: "other.org", target: "/wild", res: NotFound},
		{name: "no host", host: "-", target: "/v1", want: "any", kind: Prefix, prefix: "/v1"},
		{name: "IPv6 with port", host: "[::1]:8080", target: "/v1", want: "ipv6", kind: Prefix, prefix: "/v1"},
		{name: "IPv6 without port", host: "[::1]", target: "/v1", want: "ipv6", kind: Prefix, prefix: "/v1"},
		{name: "IPv4 with port", host: "10.0.0.1:80", target: "/v1", want: "ipv4", kind: Prefix, prefix: "/v1"},
		{name: "exact beats wildcard", host: "SHOP.example.com", target: "/v1", want: "upper-config", kind: Prefix, prefix: "/v1"},
		{name: "host rule on header", host: "h.example.org", target: "/h", header: http.Header{"X-H": {"1"}}, want: "host-hdr", kind: Prefix, prefix: "/h"},
		{name: "host rule header fails falls back", host: "h.example.org", target: "/h", want: "any-h", kind: Prefix, prefix: "/h"},
		{name: "host rule method fails falls back", method: "POST", host: "m.example.org", target: "/m", want: "any-m", kind: Prefix, prefix: "/m"},
		{name: "host rule method", host: "m.example.org", target: "/m", want: "host-get", kind: Prefix, prefix: "/m"},
	}
	runLookupCases(t, rules, tests)
}

func TestLookupMethods(t *testing.T) {
	rules := []Rule[string]{
		{Value: "get", Paths: []string{"/items"}, Methods: []string{"GET"}},
		{Value: "post", Paths: []string{"/items"}, Methods: []string{"POST", "POST"}},
		{Value: "admin", Paths: []string{"=/admin"}, Methods: []string{"DELETE"}, Headers: map[string]string{"X-Admin": "yes"}},
		{Value: "admin-prefix", Paths: []string{"/admin"}, Methods: []string{"GET"}},
		{Value: "docs-put", Paths: []string{"=/docs/x"}, Methods: []string{"PUT"}},
		{Value: "docs", Paths: []string{"/docs"}},
		{Value: "custom", Paths: []string{"/dav"}, Methods: []string{"PROPFIND", "MKCOL"}},
	}
	tests := []lookupCase{
		{name: "GET", target: "/items", want: "get", kind: Prefix, prefix: "/items"},
		{name: "HEAD rides on GET", method: "HEAD", target: "/items", want: "get", kind: Prefix, prefix: "/items"},
		{name: "POST", method: "POST", target: "/items/1", want: "post", kind: Prefix, prefix: "/items"},
		{name: "405 union", method: "PATCH", target: "/items", res: MethodNotAllowed, allow: "GET, HEAD, POST"},
		{name: "405 for OPTIONS", method: "OPTIONS", target: "/items", res: MethodNotAllowed, allow: "GET, HEAD, POST"},
		{name: "header miss is not a method miss", method: "DELETE", target: "/admin", res: MethodNotAllowed, allow: "GET, HEAD"},
		{name: "header and method", method: "DELETE", target: "/admin", header: http.Header{"X-Admin": {"yes"}}, want: "admin", kind: Exact},
		{name: "405 across paths", method: "PATCH", target: "/admin", header: http.Header{"X-Admin": {"yes"}}, res: MethodNotAllowed, allow: "DELETE, GET, HEAD"},
		{name: "method miss falls to shorter prefix", target: "/docs/x", want: "docs", kind: Prefix, prefix: "/docs"},
		{name: "exact method", method: "PUT", target: "/docs/x", want: "docs-put", kind: Exact},
		{name: "custom methods", method: "GET", target: "/dav/a", res: MethodNotAllowed, allow: "MKCOL, PROPFIND"},
		{name: "custom method", method: "MKCOL", target: "/dav/a", want: "custom", kind: Prefix, prefix: "/dav"},
		{name: "404 stays 404", method: "PATCH", target: "/nothing", res: NotFound},
	}
	runLookupCases(t, rules, tests)
}

// TestLookupConnectAndTraceOnlyWhenListed checks that CONNECT and TRACE
// match only rules that list them: a rule without methods answers them
// with MethodNotAllowed and the methods it does take.
func TestLookupConnectAndTraceOnlyWhenListed(t *testing.T) {
	rules := []Rule[string]{
		{Value: "open", Paths: []string{"/"}},
		{Value: "get", Paths: []string{"/api"}, Methods: []string{"GET"}},
		{Value: "tunnel", Paths: []string{"/tunnel"}, Methods: []string{"CONNECT"}},
		{Value: "trace", Paths: []string{"/debug"}, Methods: []string{"TRACE", "GET"}},
		{Value: "host", Hosts: []string{"proxy.example"}, Paths: []string{"/"}, Methods: []string{"CONNECT"}},
	}
	anyAllow := "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
	tests := []lookupCase{
		{name: "GET takes the open route", target: "/x", want: "open", kind: Prefix, prefix: "/"},
		{name: "custom method takes the open route", method: "PURGE", target: "/x", want: "open", kind: Prefix, prefix: "/"},
		{name: "CONNECT refused by the open route", method: "CONNECT", target: "/x", res: MethodNotAllowed, allow: anyAllow},
		{name: "TRACE refused by the open route", method: "TRACE", target: "/x", res: MethodNotAllowed, allow: anyAllow},
		{name: "authority-form CONNECT", method: "CONNECT", target: "example.net:443", res: MethodNotAllowed, allow: anyAllow},
		{name: "CONNECT Allow joins the near misses", method: "CONNECT", target: "/api/x", res: MethodNotAllowed, allow: anyAllow},
		{name: "TRACE where listed", method: "TRACE", target: "/debug", want: "trace", kind: Prefix, prefix: "/debug"},
		{name: "CONNECT where listed", method: "CONNECT", target: "/tunnel/a", want: "tunnel", kind: Prefix, prefix: "/tunnel"},
		{name: "CONNECT to a host that lists it", method: "CONNECT", host: "proxy.example:443", target: "proxy.example:443", want: "host", kind: Prefix, prefix: "/"},
		{name: "GET to that host falls back", host: "proxy.example", target: "/a", want: "open", kind: Prefix, prefix: "/"},
	}
	runLookupCases(t, rules, tests)

	only, err := Compile([]Rule[string]{{Value: "get", Paths: []string{"/"}, Methods: []string{"GET"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"CONNECT", "TRACE"} {
		r := httptest.NewRequest(method, "/", nil)
		if m, res := only.Lookup(r, "/"); res != MethodNotAllowed || m.Allow != "GET, HEAD" {
			t.Errorf("%s / on a GET route: got %v, Allow %q; want %v, Allow %q", method, res, m.Allow, MethodNotAllowed, "GET, HEAD")
		}
	}
}

func TestLookupConditions(t *testing.T) {
	rules := []Rule[string]{
		{Value: "plain", Paths: []string{"/api/orders"}},
		{Value: "v2", Paths: []string{"/api/orders"}, Headers: map[string]string{"x-version": "2"}},
		{Value: "beta", Paths: []string{"/api/orders"}, Query: map[string]string{"beta": "1"}},
		{Value: "v2-beta", Paths: []string{"/api/orders"}, Headers: map[string]string{"X-Version": "2"}, Query: map[string]string{"beta": "1"}},
		{Value: "first", Paths: []string{"/dup"}},
		{Value: "second", Paths: []string{"/dup"}},
		{Value: "special", Paths: []string{"/api/orders/special"}, Headers: map[string]string{"X-Special": "on"}},
		{Value: "search", Paths: []string{"=/search"}, Query: map[string]string{"q": "a b", "lang": ""}},
		{Value: "hdr-prefix", Paths: []string{"/r"}, Headers: map[string]string{"X-A": "1"}},
		{Value: "re", Paths: []string{"~/r/(?P<n>.*)"}},
	}
	tests := []lookupCase{
		{name: "no conditions", target: "/api/orders", want: "plain", kind: Prefix, prefix: "/api/orders"},
		{name: "header", target: "/api/orders", header: http.Header{"X-Version": {"2"}}, want: "v2", kind: Prefix, prefix: "/api/orders"},
		{name: "header name case", target: "/api/orders", header: http.Header{"x-VERSION": {"2"}}, want: "v2", kind: Prefix, prefix: "/api/orders"},
		{name: "header any value", target: "/api/orders", header: http.Header{"X-Version": {"1", "2"}}, want: "v2", kind: Prefix, prefix: "/api/orders"},
		{name: "header value exact", target: "/api/orders", header: http.Header{"X-Version": {"2 "}}, want: "plain", kind: Prefix, prefix: "/api/orders"},
		{name: "query", target: "/api/orders?beta=1", want: "beta", kind: Prefix, prefix: "/api/orders"},
		{name: "query among others", target: "/api/orders?x=1&beta=1&y", want: "beta", kind: Prefix, prefix: "/api/orders"},
		{name: "query escaped", target: "/api/orders?be%74a=%31", want: "beta", kind: Prefix, prefix: "/api/orders"},
		{name: "query wrong value", target: "/api/orders?beta=2", want: "plain", kind: Prefix, prefix: "/api/orders"},
		{name: "query bad escape", target: "/api/orders?beta=%zz", want: "plain", kind: Prefix, prefix: "/api/orders"},
		{name: "more conditions first", target: "/api/orders?beta=1", header: http.Header{"X-Version": {"2"}}, want: "v2-beta", kind: Prefix, prefix: "/api/orders"},
		{name: "equal conditions in rule order", target: "/api/orders?beta=2", header: http.Header{"X-Version": {"2"}}, want: "v2", kind: Prefix, prefix: "/api/orders"},
		{name: "rule order tie-break", target: "/dup", want: "first", kind: Prefix, prefix: "/dup"},
		{name: "header fail falls to shorter prefix", target: "/api/orders/special/1", want: "plain", kind: Prefix, prefix: "/api/orders"},
		{name: "deep header", target: "/api/orders/special", header: http.Header{"X-Special": {"on"}}, want: "special", kind: Prefix, prefix: "/api/orders/special"},
		{name: "query plus", target: "/search?q=a+b&lang=", want: "search", kind: Exact},
		{name: "query percent space", target: "/search?lang&q=a%20b", want: "search", kind: Exact},
		{name: "query missing", target: "/search?q=a+b", res: NotFound},
		{name: "header fail falls to regex", target: "/r/x", want: "re", kind: Regex, caps: []Capture{{"n", "x"}}},
		{name: "header before regex", target: "/r/x", header: http.Header{"X-A": {"1"}}, want: "hdr-prefix", kind: Prefix, prefix: "/r"},
	}
	runLookupCases(t, rules, tests)
}

func TestLookupIgnoresUnnormalizedInput(t *testing.T) {
	table, err := Compile([]Rule[string]{{Value: "root", Paths: []string{"/"}}, {Value: "re", Paths: []string{"~.*"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, p := range []string{"", "*", "api"} {
		if m, res := table.Lookup(r, p); res != NotFound {
			t.Errorf("Lookup(%q): got %v (%q), want %v", p, res, m.Value, NotFound)
		}
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	table, err := Compile([]Rule[string]{
		{Value: "exact", Paths: []string{"=/api/orders"}, Methods: []string{"GET"}},
		{Value: "prefix", Paths: []string{"/api/"}, Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"q": "x y"}},
		{Value: "host", Hosts: []string{"*.example.com"}, Paths: []string{"/h"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ host, target, path string }{
		{"example.net", "/api/orders", "/api/orders"},
		{"example.net:8080", "/api/a/b/c?z=1&q=x+y", "/api/a/b/c"},
		{"a.example.com.", "/h/1", "/h/1"},
		{"a.example.com", "/missing", "/missing"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, tt.target, nil)
		r.Host = tt.host
		r.Header.Set("X-A", "1")
		allocs := testing.AllocsPerRun(100, func() { table.Lookup(r, tt.path) })
		if allocs != 0 {
			t.Errorf("Lookup(%s %s): got %v allocs, want 0", tt.host, tt.path, allocs)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	rules := []Rule[string]{
		{Value: "ok", Paths: []string{"/ok"}},
		{Value: "regexp", Paths: []string{"/fine", "~/a/(b"}},
		{Value: "no-paths"},
		{Value: "relative", Paths: []string{"api"}},
		{Value: "encoded", Paths: []string{"=/a%2Fb"}},
		{Value: "port", Hosts: []string{"api.example.com:8080"}, Paths: []string{"/"}},
		{Value: "wildcard", Hosts: []string{"a.*.example.com"}, Paths: []string{"/"}},
		{Value: "method", Methods: []string{"get"}, Paths: []string{"/"}},
		{Value: "host-header", Headers: map[string]string{"host": "x"}, Paths: []string{"/"}},
		{Value: "empty", Paths: []string{""}},
	}
	_, err := Compile(rules)
	if err == nil {
		t.Fatal("Compile: got no error, want one per bad rule")
	}
	want := []struct {
		rule         int
		field, value string
	}{
		{1, "path", "~/a/(b"},
		{2, "", ""},
		{3, "path", "api"},
		{4, "path", "=/a%2Fb"},
		{5, "host", "api.example.com:8080"},
		{6, "host", "a.*.example.com"},
		{7, "method", "get"},
		{8, "header", "host"},
		{9, "path", ""},
	}
	var got []*CompileError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *CompileError
		for _, leaf := range flatten(e) {
			if errors.As(leaf, &ce) {
				got = append(got, ce)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	slices.SortStableFunc(got, func(a, b *CompileError) int { return a.Rule - b.Rule })
	for i, w := range want {
		if g := got[i]; g.Rule != w.rule || g.Field != w.field || g.Value != w.value {
			t.Errorf("error %d: got rule %d %s %q, want rule %d %s %q", i, g.Rule, g.Field, g.Value, w.rule, w.field, w.value)
		}
	}
	if !errors.Is(err, ErrEncodedSeparator) {
		t.Errorf("got %v, want it to wrap ErrEncodedSeparator", err)
	}
	msg := err.Error()
	for _, s := range []string{`rule 1: path "~/a/(b": compile regular expression: `, `rule 2: at least one path is required`} {
		if !strings.Contains(msg, s) {
			t.Errorf("got message %q, want it to contain %q", msg, s)
		}
	}
}

// flatten returns the leaves of a tree of joined errors.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Exact.String(), "exact"}, {Prefix.String(), "prefix"}, {Regex.String(), "regex"},
		{PathKind(0).String(), "PathKind(0)"},
		{NotFound.String(), "not found"}, {Matched.String(), "matched"},
		{MethodNotAllowed.String(), "method not allowed"}, {Result(9).String(), "Result(9)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestLookupEmptyTable(t *testing.T) {
	table, err := Compile[string](nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if m, res := table.Lookup(r, "/"); res != NotFound || m.Allow != "" {
		t.Errorf("Lookup(/): got %v, Allow %q; want %v", res, m.Allow, NotFound)
	}
}

func TestCompileTooManyMethods(t *testing.T) {
	var rules []Rule[int]
	for i := range maxMethods + 1 {
		rules = append(rules, Rule[int]{Value: i, Paths: []string{"/"}, Methods: []string{"M" + strconv.Itoa(i)}})
	}
	if _, err := Compile(rules[:maxMethods]); err != nil {
		t.Fatalf("Compile(%d methods): %v", maxMethods, err)
	}
	if _, err := Compile(rules); !errors.Is(err, errManyMethods) {
		t.Fatalf("Compile(%d methods): got %v, want %v", maxMethods+1, err, errManyMethods)
	}
}

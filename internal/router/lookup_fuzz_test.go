package router

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fuzzRules is a fixed table with every kind of path and condition.
var fuzzRules = []Rule[string]{
	{Value: "exact", Paths: []string{"=/api/orders"}, Methods: []string{"GET"}},
	{Value: "orders", Paths: []string{"/api/orders"}, Headers: map[string]string{"X-V": "2"}},
	{Value: "api", Paths: []string{"/api/"}, Query: map[string]string{"k": "v w"}},
	{Value: "deep", Paths: []string{"/a/b/c"}, Methods: []string{"POST", "PUT"}},
	{Value: "host", Hosts: []string{"api.example.com", "*.example.org", "[::1]"}, Paths: []string{"/", "=/h"}},
	{Value: "user", Paths: []string{"~/users/(?P<id>[^/]+)(?:/(?P<rest>.*))?$"}},
	{Value: "any-re", Paths: []string{"~/x.*y"}, Methods: []string{"DELETE"}},
	{Value: "unicode", Paths: []string{"/caf%C3%A9"}},
}

func FuzzLookup(f *testing.F) {
	table, err := Compile(fuzzRules)
	if err != nil {
		f.Fatal(err)
	}
	seeds := []struct{ method, host, path, query, header string }{
		{"GET", "api.example.com", "/api/orders", "", ""},
		{"POST", "a.example.org:80", "/a/b/c/d", "k=v+w", "2"},
		{"HEAD", "[::1]:1", "/users/7/x", "", ""},
		{"PATCH", "", "/api/", "k=v%20w&k", "2"},
		{"DELETE", "EXAMPLE.ORG.", "/x/../y", "%zz", ""},
		{"GET", "[", "", "", ""},
		{"GET", ":", "*", "=&=", ""},
		{"GET", "a.", "//..//%2e/caf%c3%a9", "", ""},
		{"CONNECT", "api.example.com:443", "", "", ""},
		{"TRACE", "x.example.org", "/a/b/c", "", "2"},
		{"CONNECT", "", "/users/1", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.host, s.path, s.query, s.header)
	}
	f.Fuzz(func(t *testing.T, method, host, path, query, header string) {
		r := &http.Request{
			Method: method,
			Host:   host,
			URL:    &url.URL{Path: path, RawQuery: query},
			Header: http.Header{"X-V": {header}},
		}
		checkLookup(t, table, r, path)
		if norm, err := NormalizePath(path); err == nil {
			checkLookup(t, table, r, norm)
		}
	})
}

// checkLookup runs one lookup and checks that the result is consistent.
func checkLookup(t *testing.T, table *Table[string], r *http.Request, path string) {
	m, res := table.Lookup(r, path)
	switch res {
	case NotFound:
		if m.Value != "" || m.Allow != "" {
			t.Fatalf("Lookup(%q): NotFound with value %q, allow %q", path, m.Value, m.Allow)
		}
	case MethodNotAllowed:
		if m.Allow == "" || m.Value != "" {
			t.Fatalf("Lookup(%q): MethodNotAllowed with value %q, allow %q", path, m.Value, m.Allow)
		}
		if slices.Contains(strings.Split(m.Allow, ", "), r.Method) {
			t.Fatalf("Lookup(%s %q): MethodNotAllowed but Allow %q lists the method", r.Method, path, m.Allow)
		}
	case Matched:
		// No rule of fuzzRules lists CONNECT or TRACE.
		if r.Method == "CONNECT" || r.Method == "TRACE" {
			t.Fatalf("Lookup(%s %q): matched %q, which does not list the method", r.Method, path, m.Value)
		}
		switch m.Kind {
		case Exact:
			if m.Value != "exact" && m.Value != "host" {
				t.Fatalf("Lookup(%q): got exact match of %q", path, m.Value)
			}
		case Prefix:
			p := m.Prefix
			if !strings.HasPrefix(path, p) || len(path) > len(p) && !strings.HasSuffix(p, "/") && path[len(p)] != '/' {
				t.Fatalf("Lookup(%q): prefix %q not on a segment boundary", path, p)
			}
		case Regex:
			if m.Value == "user" && len(m.Captures) != 2 {
				t.Fatalf("Lookup(%q): got captures %q, want id and rest", path, m.Captures)
			}
		default:
			t.Fatalf("Lookup(%q): got kind %v", path, m.Kind)
		}
		if m.Kind != Regex && m.Captures != nil {
			t.Fatalf("Lookup(%q): got captures %q on a %v match", path, m.Captures, m.Kind)
		}
	default:
		t.Fatalf("Lookup(%q): got result %v", path, res)
	}
}

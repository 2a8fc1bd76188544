package cors

import (
	"slices"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := configure(t, `{allow_origins: ["https://app.example.com"]}`)
	s := c.Spec.(*Spec)
	if !slices.Equal(s.AllowMethods, DefaultMethods) {
		t.Errorf("allow_methods: got %q, want %q", s.AllowMethods, DefaultMethods)
	}
	if !slices.Equal(s.AllowHeaders, DefaultHeaders) {
		t.Errorf("allow_headers: got %q, want %q", s.AllowHeaders, DefaultHeaders)
	}
	if len(s.ExposeHeaders) != 0 || s.AllowCredentials || s.PrivateNetwork {
		t.Errorf("got %+v, want no expose headers, credentials or private network", s)
	}
	if s.MaxAge.D() != DefaultMaxAge {
		t.Errorf("max_age: got %s, want %s", s.MaxAge.D(), DefaultMaxAge)
	}
	// A list in the config replaces the default list.
	s = configure(t, `{allow_origins: ["*"], allow_methods: [GET], allow_headers: [X-A]}`).Spec.(*Spec)
	if !slices.Equal(s.AllowMethods, []string{"GET"}) || !slices.Equal(s.AllowHeaders, []string{"X-A"}) {
		t.Errorf("got methods %q, headers %q; want [GET], [X-A]", s.AllowMethods, s.AllowHeaders)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const p = "routes[0].plugins.cors."
	tests := []struct {
		name, src string
		want      []string // every line of the error, in order
	}{
		{name: "no origins", src: `{}`,
			want: []string{p + "allow_origins: must list at least one origin: " + originSyntax}},
		{name: "empty origins", src: `{allow_origins: []}`,
			want: []string{p + "allow_origins: must list at least one origin: " + originSyntax}},
		{name: "star and credentials", src: `{allow_origins: ["*"], allow_credentials: true}`,
			want: []string{p + `allow_origins[0]: "*" cannot be combined with allow_credentials: true: browsers refuse a wildcard origin on credentialed requests; list the origins instead`}},
		{name: "star not alone", src: `{allow_origins: ["https://a.example.com", "*"]}`,
			want: []string{p + `allow_origins[1]: "*" allows every origin and must be the only entry`}},
		{name: "bad origins", src: `{allow_origins: ["", "app.example.com", "https://app.example.com/", "https://app.example.com/api",
			"https://app.example.com?x=1", "https://app.example.com#f", "https://u@app.example.com", "1http://a.example.com",
			"https://a.example.com:0", "https://a.example.com:65536", "https://a..example.com", "https://a b.example.com",
			"null", "https://*.com", "https://a.*.example.com", "https://*example.com", "*.example.com", "https://*"]}`,
			want: []string{
				p + `allow_origins[0]: "" is empty; ` + originSyntax,
				p + `allow_origins[1]: "app.example.com" has no scheme; ` + originSyntax,
				p + `allow_origins[2]: "https://app.example.com/" must not end with a slash; ` + originSyntax,
				p + `allow_origins[3]: "https://app.example.com/api" must not have a path; ` + originSyntax,
				p + `allow_origins[4]: "https://app.example.com?x=1" must not have a query; ` + originSyntax,
				p + `allow_origins[5]: "https://app.example.com#f" must not have a fragment; ` + originSyntax,
				p + `allow_origins[6]: "https://u@app.example.com" must not have a user name or password; ` + originSyntax,
				p + `allow_origins[7]: "1http://a.example.com" has an invalid scheme; ` + originSyntax,
				p + `allow_origins[8]: "https://a.example.com:0" is not a valid origin (host or port); ` + originSyntax,
				p + `allow_origins[9]: "https://a.example.com:65536" is not a valid origin (host or port); ` + originSyntax,
				p + `allow_origins[10]: "https://a..example.com" is not a valid origin (host or port); ` + originSyntax,
				p + `allow_origins[11]: "https://a b.example.com" is not a valid origin (host or port); ` + originSyntax,
				p + `allow_origins[12]: "null" is refused: the "null" origin is sent by sandboxed frames and local files, and any page can produce it; ` + originSyntax,
				p + `allow_origins[13]: "https://*.com" is too broad: a pattern needs a domain of at least two labels after "*.", as in "https://*.example.com"; ` + originSyntax,
				p + `allow_origins[14]: "https://a.*.example.com" may hold "*" only as the whole first label, as in "https://*.example.com"; ` + originSyntax,
				p + `allow_origins[15]: "https://*example.com" may hold "*" only as the whole first label, as in "https://*.example.com"; ` + originSyntax,
				p + `allow_origins[16]: "*.example.com" has no scheme; ` + originSyntax,
				p + `allow_origins[17]: "https://*" may hold "*" only as the whole first label, as in "https://*.example.com"; ` + originSyntax,
			}},
		{name: "duplicate origins", src: `{allow_origins: ["https://a.example.com", "HTTPS://A.example.com:443", "https://*.example.com", "https://*.Example.com"]}`,
			want: []string{
				p + `allow_origins[1]: "HTTPS://A.example.com:443" is listed twice`,
				p + `allow_origins[3]: "https://*.Example.com" is listed twice`,
			}},
		{name: "methods", src: `{allow_origins: ["*"], allow_methods: [GET, get, "*", "GE T", GET]}`,
			want: []string{
				p + `allow_methods[1]: "get": methods are case-sensitive; write "GET"`,
				p + `allow_methods[2]: "*" is not supported; list the methods, such as GET, POST`,
				p + `allow_methods[3]: "GE T" is not a method: use upper-case letters, digits, - and _ (such as GET)`,
				p + `allow_methods[4]: "GET" is listed twice`,
			}},
		{name: "no methods", src: `{allow_origins: ["*"], allow_methods: []}`,
			want: []string{p + "allow_methods: must list at least one method, such as GET"}},
		{name: "headers", src: `{allow_origins: ["*"], allow_headers: [X-A, "X A", x-a, ""], expose_headers: ["X:B"]}`,
			want: []string{
				p + `allow_headers[1]: "X A" is not a header name: use 1 to 128 letters, digits, - and _`,
				p + `allow_headers[2]: "x-a" is listed twice`,
				p + `allow_headers[3]: "" is not a header name: use 1 to 128 letters, digits, - and _`,
				p + `expose_headers[0]: "X:B" is not a header name: use 1 to 128 letters, digits, - and _`,
			}},
		{name: "star headers with credentials", src: `{allow_origins: ["https://a.example.com"], allow_credentials: true, allow_headers: ["*"], expose_headers: ["*"]}`,
			want: []string{
				p + `allow_headers[0]: "*" cannot be combined with allow_credentials: true: browsers read it as a header named "*" on credentialed requests; list the headers`,
				p + `expose_headers[0]: "*" cannot be combined with allow_credentials: true: browsers read it as a header named "*" on credentialed requests; list the headers`,
			}},
		{name: "negative max_age", src: `{allow_origins: ["*"], max_age: -1s}`,
			want: []string{p + `max_age: duration "-1s" must not be negative`}},
		{name: "sub-second max_age", src: `{allow_origins: ["*"], max_age: 500ms}`,
			want: []string{p + "max_age: must be 0 (header omitted) or at least 1s: it is sent in whole seconds"}},
		{name: "huge max_age", src: `{allow_origins: ["*"], max_age: 25h}`,
			want: []string{p + "max_age: must be at most 24h: browsers cap it there (Chromium at 2h)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.TryConfigure(Registration(), tt.src)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidConfigs(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`{allow_origins: ["*"]}`,
		`{allow_origins: ["*"], allow_headers: ["*"], expose_headers: ["*"]}`,
		`{allow_origins: ["https://app.example.com", "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:5173"]}`,
		`{allow_origins: ["https://*.example.com", "https://*.example.co.uk:8443", "capacitor://localhost"]}`,
		`{allow_origins: ["https://app.example.com"], allow_credentials: true, allow_methods: [GET, M-SEARCH], max_age: 24h}`,
		`{allow_origins: ["https://app.example.com"], allow_headers: [], max_age: 0s, private_network: true}`,
	} {
		if _, err := plugintest.TryConfigure(Registration(), src); err != nil {
			t.Errorf("%s: got %q, want no error", src, err.Error())
		}
	}
}

func TestPolicyAllowed(t *testing.T) {
	t.Parallel()
	p := compile(configure(t, `{allow_origins: ["https://app.example.com", "http://localhost:3000", "http://[::1]:5173",
		"https://*.example.org", "https://*.example.net:8443", "HTTPS://*.Upper.Example.com"]}`).Spec.(*Spec))
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.example.com", true},
		{"https://app.example.com:443", true},
		{"http://localhost:3000", true},
		{"http://[::1]:5173", true},
		{"http://[::1]", false},
		{"http://localhost", false},
		{"http://localhost:3001", false},
		{"https://app.example.com.", false},
		{"https://app.example.com/", false},
		{"https://a.example.org", true},
		{"https://a.b.c.example.org", true},
		{"https://example.org", false},
		{"https://evilexample.org", false},
		{"https://a.example.org.evil.com", false},
		{"https://a.example.org:444", false},
		{"https://a.example.net:8443", true},
		{"https://a.example.net", false},
		{"https://x.upper.example.com", true},
		{"null", false},
		{"", false},
		{"https://", false},
		{"https://*.example.org", false},
	}
	for _, tt := range tests {
		if got := p.allowed(tt.origin); got != tt.want {
			t.Errorf("allowed(%q): got %t, want %t", tt.origin, got, tt.want)
		}
	}
}

func FuzzSplitOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.com", "http://[::1]:80", "https://a.b:443", "x://", "https://a:b:c", "null"} {
		f.Add(s)
	}
	p := compile(&Spec{AllowOrigins: []string{"https://*.example.com", "https://app.example.org"}})
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := splitOrigin(s)
		allowed := p.allowed(s)
		if !ok {
			if allowed {
				t.Fatalf("allowed(%q) but it does not parse", s)
			}
			return
		}
		// The normalised form parses to itself.
		k := o.key()
		o2, ok := splitOrigin(k)
		if !ok || o2.key() != k {
			t.Fatalf("key %q of %q does not round-trip", k, s)
		}
		if allowed != p.allowed(k) {
			t.Fatalf("allowed(%q) = %t but allowed(%q) = %t", s, allowed, k, !allowed)
		}
	})
}

func TestCompileSkipsInvalidEntries(t *testing.T) {
	t.Parallel()
	// Build only sees validated specs; a spec that skipped Validate must
	// still not panic, and its bad entries allow nothing.
	p := compile(&Spec{AllowOrigins: []string{"", "bad", "https://*.com", "https://a.example.com/x", "https://ok.example.com"}})
	for _, o := range []string{"bad", "https://x.com", "https://a.example.com", "https://ok.example.com"} {
		if got, want := p.allowed(o), o == "https://ok.example.com"; got != want {
			t.Errorf("allowed(%q): got %t, want %t", o, got, want)
		}
	}
}

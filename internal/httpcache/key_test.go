package httpcache

import (
	"net/http"
	"strings"
	"testing"
)

func TestNormalizeQuery(t *testing.T) {
	tests := []struct {
		name             string
		raw              string
		include, exclude []string
		want             string
	}{
		{"empty", "", nil, nil, ""},
		{"single", "a=1", nil, nil, "a=1"},
		{"sorted", "b=2&a=1", nil, nil, "a=1&b=2"},
		{"repeated keep order", "b=2&a=3&a=1", nil, nil, "a=3&a=1&b=2"},
		{"escapes canonical", "q=%41+b&p=x%20y", nil, nil, "p=x+y&q=A+b"},
		{"bare name", "flag&a=1", nil, nil, "a=1&flag="},
		{"include", "utm=1&category=books&page=2", []string{"category", "page"}, nil, "category=books&page=2"},
		{"exclude", "utm=1&category=books", nil, []string{"utm"}, "category=books"},
		{"empty parts", "&&a=1&", nil, nil, "a=1"},
		{"bad escape kept", "a=%zz", nil, nil, "a=%25zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NormalizeQuery(tt.raw, tt.include, tt.exclude); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyerBase(t *testing.T) {
	k := NewKeyer(KeyRules{Route: "products", Headers: []string{"x-tenant"}})
	h := http.Header{"X-Tenant": {"acme"}}
	got := k.Base("/api/products", k.Query("b=2&a=1"), "shop.example", h, "")
	if want := "products\n/api/products?a=1&b=2\nshop.example\nh:X-Tenant=acme"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !strings.HasPrefix(got, URLPrefix("products", "/api/products", "a=1&b=2")) {
		t.Errorf("key %q does not start with its URL prefix", got)
	}
	priv := k.Base("/api/products", "", "shop.example", h, "alice")
	if !strings.HasSuffix(priv, "\nc=alice") {
		t.Errorf("got %q, want a consumer part", priv)
	}
	long := k.Base("/p", "", "h", http.Header{"X-Tenant": {strings.Repeat("x", 500)}}, "b\x01ob")
	for i := 0; i < len(long); i++ {
		if c := long[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			t.Fatalf("got byte %#x in key %q", c, long)
		}
	}
	longPath := "/" + strings.Repeat("a", 300)
	if got := k.Base(longPath, "", "h", nil, ""); !strings.HasPrefix(got, "products\n"+longPath+"?") {
		t.Errorf("got %q, want the long path verbatim (path prefixes purge)", got)
	}
	if len(long) > 200 {
		t.Errorf("got a %d-byte key, want long parts hashed", len(long))
	}
}

func TestVary(t *testing.T) {
	resp := http.Header{"Vary": {"accept-language, Accept-Encoding", "Accept-Language"}}
	names := VaryNames(resp)
	if len(names) != 2 || names[0] != "Accept-Language" || names[1] != "Accept-Encoding" {
		t.Fatalf("got %q, want [Accept-Language Accept-Encoding]", names)
	}
	m := NewVaryMarker(names)
	if !IsMarker(m) || !SameNames(m, names) {
		t.Fatalf("got marker %+v", m)
	}
	en := http.Header{"Accept-Language": {"en"}}
	fr := http.Header{"Accept-Language": {"fr"}}
	ken, kfr := VariantKey("base", m, en), VariantKey("base", m, fr)
	if ken == kfr || !strings.HasPrefix(ken, "base\nv=") {
		t.Errorf("got %q and %q, want two variants under base", ken, kfr)
	}
	if again := VariantKey("base", m, http.Header{"Accept-Language": {"en"}}); again != ken {
		t.Errorf("got %q, want %q", again, ken)
	}
	if other := VariantKey("base", NewVaryMarker(names), en); other == ken {
		t.Error("a new marker epoch gave the same variant key")
	}
	e := &Entry{Status: 200, VaryNames: names, VaryValues: VaryValues(names, en)}
	if !VaryMatches(e, en) || VaryMatches(e, fr) {
		t.Error("VaryMatches does not tell en from fr")
	}
}

// TestStripQuery: what the key leaves out is what the upstream does not
// get, with the same reading of names (escapes, no value).
func TestStripQuery(t *testing.T) {
	tests := []struct {
		name    string
		rules   KeyRules
		raw     string
		want    string
		removed bool
	}{
		{"no rules", KeyRules{}, "utm=1&a=2", "utm=1&a=2", false},
		{"exclude", KeyRules{Exclude: []string{"utm"}}, "a=2&utm=1&b=%20", "a=2&b=%20", true},
		{"exclude escaped name", KeyRules{Exclude: []string{"utm"}}, "ut%6D=evil&a=1", "a=1", true},
		{"exclude repeated", KeyRules{Exclude: []string{"utm"}}, "utm=1&utm=2", "", true},
		{"exclude hides a cloaked parameter", KeyRules{Exclude: []string{"utm"}}, "a=1&utm=x;callback=evil", "a=1", true},
		{"exclude without value", KeyRules{Exclude: []string{"debug"}}, "debug&a=1", "a=1", true},
		{"exclude nothing to remove", KeyRules{Exclude: []string{"utm"}}, "b=2&a=1", "b=2&a=1", false},
		{"include", KeyRules{Include: []string{"category"}}, "category=x&page=2&sort=asc", "category=x", true},
		{"include keeps order and bytes", KeyRules{Include: []string{"a", "b"}}, "b=%32&x=1&a=1", "b=%32&a=1", true},
		{"include none kept", KeyRules{Include: []string{"a"}}, "x=1", "", true},
		{"empty", KeyRules{Include: []string{"a"}}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := NewKeyer(tt.rules)
			got, removed := k.StripQuery(tt.raw)
			if got != tt.want || removed != tt.removed {
				t.Errorf("got %q %t, want %q %t", got, removed, tt.want, tt.removed)
			}
			// The key of the stripped query is the key of the original one.
			if a, b := k.Query(tt.raw), k.Query(got); a != b {
				t.Errorf("key of the original %q, of the stripped %q: want them equal", a, b)
			}
		})
	}
}

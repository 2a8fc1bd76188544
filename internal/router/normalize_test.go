package router

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		err  error
	}{
		{name: "empty is root", in: "", want: "/"},
		{name: "root", in: "/", want: "/"},
		{name: "canonical", in: "/api/orders", want: "/api/orders"},
		{name: "canonical trailing slash", in: "/api/orders/", want: "/api/orders/"},
		{name: "canonical escape", in: "/a%20b%3A", want: "/a%20b%3A"},
		{name: "double slash", in: "//", want: "/"},
		{name: "dot slash", in: "/./", want: "/"},
		{name: "lone dot", in: "/.", want: "/"},
		{name: "lone dot dot", in: "/..", want: "/"},
		{name: "dot dot above root", in: "/../a", want: "/a"},
		{name: "many dot dots above root", in: "/a/../../../b/", want: "/b/"},
		{name: "repeated slashes", in: "//api///orders", want: "/api/orders"},
		{name: "repeated trailing slashes", in: "/api//", want: "/api/"},
		{name: "traversal", in: "/api/public/../admin", want: "/api/admin"},
		{name: "encoded traversal", in: "/api/public/%2e%2e/admin", want: "/api/admin"},
		{name: "encoded traversal to root", in: "/api/%2e%2e/admin", want: "/admin"},
		{name: "mixed case encoded traversal", in: "/api/%2E%2e/x", want: "/x"},
		{name: "half encoded traversal", in: "/a/.%2e/b", want: "/b"},
		{name: "encoded dot segment", in: "/a/%2e", want: "/a/"},
		{name: "dots and trailing slash", in: "/a/./b/../c/", want: "/a/c/"},
		{name: "trailing dot dot keeps slash", in: "/a/b/..", want: "/a/"},
		{name: "trailing dot keeps slash", in: "/a/b/.", want: "/a/b/"},
		{name: "dots inside names kept", in: "/a..b/.c/..d/...", want: "/a..b/.c/..d/..."},
		{name: "unreserved decoded", in: "/api/ord%65rs", want: "/api/orders"},
		{name: "all unreserved kinds decoded", in: "/%41%7a%30%2D%2E%5F%7E", want: "/Az0-._~"},
		{name: "reserved kept upper-cased", in: "/a%3ab%3F", want: "/a%3Ab%3F"},
		{name: "non-ASCII escape upper-cased", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "overlong UTF-8 dot stays escaped", in: "/%c0%ae%c0%ae/x", want: "/%C0%AE%C0%AE/x"},
		{name: "raw non-ASCII allowed", in: "/caf\xc3\xa9", want: "/caf\xc3\xa9"},
		{name: "encoded control kept", in: "/a%0ab", want: "/a%0Ab"},
		{name: "encoded semicolon dot dot kept", in: "/a/..%3b/b", want: "/a/..%3B/b"},
		{name: "no leading slash", in: "api/orders", err: ErrBadPath},
		{name: "asterisk form", in: "*", err: ErrBadPath},
		{name: "encoded slash", in: "/a/%2f/b", err: ErrEncodedSeparator},
		{name: "encoded slash upper", in: "/a%2Fb", err: ErrEncodedSeparator},
		{name: "encoded backslash traversal", in: "/a%5c..%5cb", err: ErrEncodedSeparator},
		{name: "encoded backslash upper", in: "/a%5Cb", err: ErrEncodedSeparator},
		{name: "raw backslash", in: "/a\\..\\b", err: ErrBadPath},
		{name: "encoded NUL without slash", in: "%00", err: ErrBadPath},
		{name: "encoded NUL", in: "/a%00b", err: ErrBadPath},
		{name: "raw NUL", in: "/a\x00b", err: ErrBadPath},
		{name: "raw newline", in: "/a\nb", err: ErrBadPath},
		{name: "raw tab", in: "/a\tb", err: ErrBadPath},
		{name: "raw DEL", in: "/a\x7f", err: ErrBadPath},
		{name: "invalid escape", in: "/a%zz", err: ErrBadPath},
		{name: "half escape", in: "/a%4", err: ErrBadPath},
		{name: "bare percent", in: "/a%", err: ErrBadPath},
		{name: "percent u escape", in: "/%u002e%u002e/x", err: ErrBadPath},
		{name: "dot dot with parameters", in: "/api/public/..;/admin", err: ErrBadPath},
		{name: "dot with parameters", in: "/a/.;x/b", err: ErrBadPath},
		{name: "encoded dot dot with parameters", in: "/a/%2e%2e;/b", err: ErrBadPath},
		{name: "error after removed segment", in: "/a/../%zz", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePath(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := NormalizePath(got); again != got || err != nil {
				t.Errorf("NormalizePath(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizePathCanonicalDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/", "/api/orders/7", "/api/orders/", "/a%20b/c%C3%A9"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NormalizePath(p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizePath(%q): got %v allocs, want 0", p, allocs)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"", "/", "//", "/./", "/..", "/a/b/../c/", "/api/public/%2e%2e/admin",
		"/api/%2E%2e/x", "/a/%2f/b", "/a%5c..%5cb", "%00", "/a%4", "/a%zz",
		"/..;/x", "/caf\xc3\xa9", "/%41%7e/", "/a//b///c/./../", "/.%2e/.%2E%2e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			if out != "" {
				t.Fatalf("NormalizePath(%q) = %q with error %v; want empty output", in, out, err)
			}
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrEncodedSeparator) {
				t.Fatalf("NormalizePath(%q): got error %v, want a sentinel", in, err)
			}
			if strings.HasPrefix(in, "/") && isCanonical(in) {
				t.Fatalf("isCanonical(%q) = true, but NormalizePath fails with %v", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q; want a leading slash", in, out)
		}
		for _, bad := range []string{"//", "/./", "/../"} {
			if strings.Contains(out, bad) {
				t.Fatalf("NormalizePath(%q) = %q; contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/..") || strings.HasSuffix(out, "/.") {
			t.Fatalf("NormalizePath(%q) = %q; ends with a dot segment", in, out)
		}
		if !isCanonical(out) {
			t.Fatalf("NormalizePath(%q) = %q; the fast path does not accept it", in, out)
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("NormalizePath(%q) = %q, %v; want %q (idempotent)", out, again, err, out)
		}
		if in != "" && in != out {
			if isCanonical(in) {
				t.Fatalf("isCanonical(%q) = true, but it normalizes to %q", in, out)
			}
		}
		if in != "" {
			if slow, err := normalizeSlow(in); err != nil || slow != out {
				t.Fatalf("normalizeSlow(%q) = %q, %v; want %q", in, slow, err, out)
			}
		}
	})
}

func BenchmarkNormalizePath(b *testing.B) {
	benches := []struct{ name, in string }{
		{"canonical", "/api/v1/orders/12345/items"},
		{"non-canonical", "//api/v1/./orders/%31%32345/../12345/items%3a"},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bb.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

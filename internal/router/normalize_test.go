package router

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/httpsyntax"
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
		{name: "four-byte UTF-8 escape", in: "/%f0%9f%98%80", want: "/%F0%9F%98%80"},
		{name: "replacement character is valid UTF-8", in: "/%EF%BF%BD", want: "/%EF%BF%BD"},
		{name: "largest code point", in: "/%F4%8F%BF%BF", want: "/%F4%8F%BF%BF"},
		{name: "two characters in a row", in: "/%C3%A9%C3%A9", want: "/%C3%A9%C3%A9"},
		{name: "reserved sub-delims kept raw", in: "/a!$&'()*+,=:@[]", want: "/a!$&'()*+,=:@[]"},
		{name: "characters outside the path set escaped", in: "/a b\"<>^`{|}", want: "/a%20b%22%3C%3E%5E%60%7B%7C%7D"},
		{name: "encoded percent not before hex kept", in: "/100%25", want: "/100%25"},
		{name: "encoded percent before one hex digit", in: "/a%252", want: "/a%252"},
		{name: "encoded percent before non-hex", in: "/a%25zz/%25%25", want: "/a%25zz/%25%25"},
		{name: "encoded percent before encoded non-hex", in: "/a%25%7a%67", want: "/a%25zg"},
		{name: "encoded hash kept", in: "/a%23b", want: "/a%23b"},
		{name: "encoded question mark kept", in: "/a%3fb", want: "/a%3Fb"},
		{name: "no leading slash", in: "api/orders", err: ErrBadPath},
		// Double percent-encoding: a backend that decodes twice reads
		// another path.
		{name: "double-encoded dot", in: "/a/%252e%252e/admin", err: ErrBadPath},
		{name: "double-encoded dot upper", in: "/a/%252E", err: ErrBadPath},
		{name: "double-encoded slash", in: "/a%252fadmin", err: ErrBadPath},
		{name: "double-encoded backslash", in: "/a%255cadmin", err: ErrBadPath},
		{name: "double-encoded letter", in: "/%2541dmin", err: ErrBadPath},
		{name: "double-encoded percent", in: "/a%2525", err: ErrBadPath},
		{name: "lower-case encoded percent", in: "/a%252F", err: ErrBadPath},
		{name: "double encoding with encoded hex digits", in: "/%25%32%65", err: ErrBadPath},
		{name: "double encoding with one encoded hex digit", in: "/%252%65", err: ErrBadPath},
		{name: "double encoding after a segment", in: "/public/%25%32%66admin", err: ErrBadPath},
		// UTF-8: after decoding, the bytes must be valid and shortest.
		{name: "overlong dot two bytes", in: "/%c0%ae%c0%ae/x", err: ErrBadPath},
		{name: "overlong dot three bytes", in: "/%e0%80%ae", err: ErrBadPath},
		{name: "overlong slash", in: "/a%c0%afb", err: ErrBadPath},
		{name: "overlong backslash", in: "/a%c1%9cb", err: ErrBadPath},
		{name: "overlong four bytes", in: "/%f0%80%80%af", err: ErrBadPath},
		{name: "lone continuation byte", in: "/a%80", err: ErrBadPath},
		{name: "continuation after a character", in: "/%C3%A9%A9", err: ErrBadPath},
		{name: "truncated two-byte sequence", in: "/a%c3", err: ErrBadPath},
		{name: "truncated three-byte sequence", in: "/a%e2%82/b", err: ErrBadPath},
		{name: "lead byte then ASCII escape", in: "/a%c3%41", err: ErrBadPath},
		{name: "lead byte then raw byte", in: "/a%c3a", err: ErrBadPath},
		{name: "surrogate", in: "/%ed%a0%80", err: ErrBadPath},
		{name: "above the last code point", in: "/%f4%90%80%80", err: ErrBadPath},
		{name: "invalid lead byte", in: "/%ff", err: ErrBadPath},
		{name: "invalid hex in a continuation", in: "/%c3%zz", err: ErrBadPath},
		{name: "raw non-ASCII", in: "/caf\xc3\xa9", err: ErrBadPath},
		{name: "raw high byte", in: "/a\x80", err: ErrBadPath},
		// Path parameters: Tomcat and Spring strip them.
		{name: "semicolon", in: "/admin;x", err: ErrBadPath},
		{name: "encoded semicolon", in: "/admin%3bx", err: ErrBadPath},
		{name: "encoded semicolon upper", in: "/admin%3Bx", err: ErrBadPath},
		{name: "semicolon inside", in: "/a;b/c", err: ErrBadPath},
		{name: "semicolon alone", in: "/;", err: ErrBadPath},
		{name: "encoded semicolon dot dot", in: "/a/..%3b/b", err: ErrBadPath},
		// Encoded control bytes.
		{name: "encoded SOH", in: "/a%01", err: ErrBadPath},
		{name: "encoded tab", in: "/a%09b", err: ErrBadPath},
		{name: "encoded newline", in: "/a%0ab", err: ErrBadPath},
		{name: "encoded carriage return", in: "/a%0Db", err: ErrBadPath},
		{name: "encoded unit separator", in: "/a%1f", err: ErrBadPath},
		{name: "encoded DEL", in: "/a%7f", err: ErrBadPath},
		// Fragments are never sent.
		{name: "raw hash", in: "/admin#x", err: ErrBadPath},
		{name: "raw hash at the end", in: "/a#", err: ErrBadPath},
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
			checkUnambiguous(t, tt.in, got)
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
		// Forms a lenient backend reads differently.
		"/%252e%252e/admin", "/%252f", "/%255c", "/%2541dmin", "/%25%32%65", "/%252%65", "/100%25",
		"/%c0%ae%c0%ae/admin", "/%e0%80%ae", "/%c0%af", "/%80", "/%c3", "/%e2%82", "/%ed%a0%80",
		"/%f4%90%80%80", "/%C3%A9", "/%F0%9F%98%80", "/%EF%BF%BD",
		"/admin;x", "/admin%3bx", "/admin%3Bx", "/a;b/c",
		"/a%01", "/a%0a", "/a%1F", "/a%7f", "/admin#x", "/a b\"<>^`{|}", "/a!$&'()*+,=:@[]",
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
		checkUnambiguous(t, in, out)
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

// checkUnambiguous checks that an accepted path out holds nothing a
// lenient backend could read as another path.
func checkUnambiguous(t *testing.T, in, out string) {
	t.Helper()
	for i := 0; i < len(out); i++ {
		switch c := out[i]; {
		case c < 0x21 || c >= 0x7f:
			t.Fatalf("NormalizePath(%q) = %q; holds the raw byte %#x", in, out, c)
		case strings.IndexByte("\\#;\"<>^`{|}", c) >= 0:
			t.Fatalf("NormalizePath(%q) = %q; holds a raw %q", in, out, c)
		}
	}
	decoded, ok := decodeOnce(out)
	if !ok {
		t.Fatalf("NormalizePath(%q) = %q; not decodable", in, out)
	}
	if !utf8.ValidString(decoded) {
		t.Fatalf("NormalizePath(%q) = %q; decodes to invalid UTF-8 %q", in, out, decoded)
	}
	for i := 0; i < len(decoded); i++ {
		if c := decoded[i]; c < 0x20 || c == 0x7f || c == ';' || c == '\\' {
			t.Fatalf("NormalizePath(%q) = %q; decodes to %q, holding %q", in, out, decoded, c)
		}
	}
	// Decoding once more changes nothing that could change the route: what
	// the first decoding left holds no escape at all ("%2e", "%2f", "%5c",
	// "%25"...).
	for i := 0; i+2 < len(decoded); i++ {
		if decoded[i] == '%' && httpsyntax.IsHex(decoded[i+1]) && httpsyntax.IsHex(decoded[i+2]) {
			t.Fatalf("NormalizePath(%q) = %q; decodes to %q, which holds the escape %q", in, out, decoded, decoded[i:i+3])
		}
	}
}

// decodeOnce percent-decodes s once, as a backend does.
func decodeOnce(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !httpsyntax.IsHex(s[i+1]) || !httpsyntax.IsHex(s[i+2]) {
			return "", false
		}
		b.WriteByte(unhexDigit(s[i+1])<<4 | unhexDigit(s[i+2]))
		i += 2
	}
	return b.String(), true
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

package httpsyntax

import "testing"

func TestIsToken(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"GET", true}, {"X-Request-ID", true}, {"a!#$%&'*+-.^_`|~9", true},
		{"", false}, {"a b", false}, {"a:b", false}, {"a\"b", false}, {"ä", false}, {"a\x00", false},
	}
	for _, tt := range tests {
		if got := IsToken(tt.s); got != tt.want {
			t.Errorf("IsToken(%q) = %t, want %t", tt.s, got, tt.want)
		}
	}
}

func TestIsFieldValue(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true}, {"text/html; q=0.9", true}, {"tab\there", true}, {"caf\xc3\xa9", true},
		{"a\r\nX-Injected: 1", false}, {"a\nb", false}, {"nul\x00", false}, {"del\x7f", false},
	}
	for _, tt := range tests {
		if got := IsFieldValue(tt.s); got != tt.want {
			t.Errorf("IsFieldValue(%q) = %t, want %t", tt.s, got, tt.want)
		}
		if got := IsFieldValue([]byte(tt.s)); got != tt.want {
			t.Errorf("IsFieldValue([]byte(%q)) = %t, want %t", tt.s, got, tt.want)
		}
	}
}

func TestHex(t *testing.T) {
	for c := 0; c < 256; c++ {
		v, ok := Unhex(byte(c))
		want := -1
		switch {
		case '0' <= c && c <= '9':
			want = c - '0'
		case 'a' <= c && c <= 'f':
			want = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			want = c - 'A' + 10
		}
		if ok != (want >= 0) || ok && int(v) != want || IsHex(byte(c)) != ok {
			t.Errorf("Unhex(%q) = %d, %t; want %d", byte(c), v, ok, want)
		}
	}
	if b, ok := HexPair('2', 'f'); b != '/' || !ok {
		t.Errorf("HexPair('2', 'f') = %q, %t; want '/', true", b, ok)
	}
	if _, ok := HexPair('g', '0'); ok {
		t.Errorf("HexPair('g', '0'): ok, want not")
	}
}

package keyauth

import (
	"strings"
	"testing"
)

func TestTakeParam(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, value, rest string
		found            bool
	}{
		{"apikey=abc", "abc", "", true},
		{"a=1&apikey=abc&b=2", "abc", "a=1&b=2", true},
		{"apikey=a%2Bb&apikey=second", "a+b", "", true},
		{"a=1&b=%zz", "", "a=1&b=%zz", false},
		{"api%6bey=k&x", "k", "x", true},
		{"apikeyx=1&xapikey=2", "", "apikeyx=1&xapikey=2", false},
		{"apikey", "", "", true},
		{"&&apikey=v&&", "v", "&&&", true},
	}
	for _, tt := range tests {
		v, rest, found := takeParam(tt.raw, "apikey")
		if v != tt.value || rest != tt.rest || found != tt.found {
			t.Errorf("takeParam(%q): got %q, %q, %v; want %q, %q, %v", tt.raw, v, rest, found, tt.value, tt.rest, tt.found)
		}
	}
}

func FuzzTakeParam(f *testing.F) {
	f.Add("a=1&apikey=abc&b=2")
	f.Add("api%6bey=k&x")
	f.Add("%")
	f.Fuzz(func(t *testing.T, raw string) {
		_, rest, found := takeParam(raw, "apikey")
		if !found {
			if rest != raw {
				t.Fatalf("got rest %q for %q without the parameter, want it unchanged", rest, raw)
			}
			return
		}
		if _, _, again := takeParam(rest, "apikey"); again {
			t.Fatalf("got the parameter still in %q (from %q)", rest, raw)
		}
		for part := range strings.SplitSeq(rest, "&") {
			if part != "" && !strings.Contains("&"+raw+"&", "&"+part+"&") {
				t.Fatalf("got part %q in %q that was not in %q", part, rest, raw)
			}
		}
	})
}

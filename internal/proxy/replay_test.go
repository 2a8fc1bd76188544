package proxy

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReplayBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		limit    int
		readN    int // bytes read before the rewind; -1 for all
		wantOK   bool
		wantNext string
	}{
		{"nothing read", "hello world", 4, 0, true, "hello world"},
		{"all read, under limit", "hello world", 64, -1, true, "hello world"},
		{"part read, under limit", "hello world", 64, 5, true, "hello world"},
		{"over limit", "hello world", 4, -1, false, ""},
		{"exactly the limit", "hello", 5, -1, true, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newReplayBody(io.NopCloser(iotest.OneByteReader(strings.NewReader(tt.body))), tt.limit)
			var first []byte
			if tt.readN < 0 {
				first, _ = io.ReadAll(b)
			} else if tt.readN > 0 {
				first = make([]byte, tt.readN)
				if _, err := io.ReadFull(b, first); err != nil {
					t.Fatal(err)
				}
			}
			if got := string(first); !strings.HasPrefix(tt.body, got) {
				t.Fatalf("first read %q is not a prefix of %q", got, tt.body)
			}
			if ok := b.rewind(); ok != tt.wantOK {
				t.Fatalf("rewind = %t, want %t", ok, tt.wantOK)
			}
			if !tt.wantOK {
				if _, err := b.getBody(); err != errNoReplay {
					t.Fatalf("getBody error = %v, want errNoReplay", err)
				}
				return
			}
			got, err := io.ReadAll(b)
			if err != nil || string(got) != tt.wantNext {
				t.Fatalf("after rewind got %q (%v), want %q", got, err, tt.wantNext)
			}
			// A second rewind replays again when the whole body fit.
			if fits := len(tt.body) <= tt.limit; b.rewind() != fits {
				t.Fatalf("second rewind = %t, want %t", !fits, fits)
			} else if !fits {
				return
			}
			if got, _ := io.ReadAll(b); string(got) != tt.body {
				t.Fatalf("second replay got %q, want %q", got, tt.body)
			}
		})
	}
}

package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

func TestReadResponseHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		status  int
		minor   int
		fields  string // "Key=value|Key=value"
		wantErr error
	}{
		{"simple", "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\n", 200, 1, "Content-Type=a/b|Content-Length=3", nil},
		{"no reason", "HTTP/1.0 404\r\n\r\n", 404, 0, "", nil},
		{"bare LF", "HTTP/1.1 204 No Content\nX-A: 1\n\n", 204, 1, "X-A=1", nil},
		{"canonical keys", "HTTP/1.1 200 OK\r\ncontent-TYPE: x\r\nx-custom-key: y\r\n\r\n", 200, 1, "Content-Type=x|X-Custom-Key=y", nil},
		{"trimmed values", "HTTP/1.1 200 OK\r\nX-A:   spaced \t\r\nX-B:\r\n\r\n", 200, 1, "X-A=spaced|X-B=", nil},
		{"folded", "HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\nX-B: 3\r\n\r\n", 200, 1, "X-A=one two|X-B=3", nil},
		{"repeated", "HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n", 200, 1, "Set-Cookie=a|Set-Cookie=b", nil},
		{"http2 status line", "HTTP/2 200 OK\r\n\r\n", 0, 0, "", errMalformed},
		{"short status", "HTTP/1.1 20\r\n\r\n", 0, 0, "", errMalformed},
		{"status below 100", "HTTP/1.1 099 X\r\n\r\n", 0, 0, "", errMalformed},
		{"letters in status", "HTTP/1.1 2x0 X\r\n\r\n", 0, 0, "", errMalformed},
		{"no space after status", "HTTP/1.1 2000\r\n\r\n", 0, 0, "", errMalformed},
		{"space in key", "HTTP/1.1 200 OK\r\nBad Key: x\r\n\r\n", 0, 0, "", errMalformed},
		{"no colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, 0, "", errMalformed},
		{"empty key", "HTTP/1.1 200 OK\r\n: x\r\n\r\n", 0, 0, "", errMalformed},
		{"control char", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", 0, 0, "", errMalformed},
		{"CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", 0, 0, "", errMalformed},
		{"fold first", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", 0, 0, "", errMalformed},
		{"cut short", "HTTP/1.1 200 OK\r\nX-A: 1\r\n", 0, 0, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hd head
			err := hd.readResponse(bufio.NewReaderSize(strings.NewReader(tt.in), 16))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var fs []string
			for i := range hd.fields {
				fs = append(fs, hd.key(&hd.fields[i])+"="+hd.value(&hd.fields[i]))
			}
			if hd.status != tt.status || hd.minor != tt.minor || strings.Join(fs, "|") != tt.fields {
				t.Fatalf("got %d 1.%d %q, want %d 1.%d %q", hd.status, hd.minor, strings.Join(fs, "|"), tt.status, tt.minor, tt.fields)
			}
		})
	}
}

func TestReadResponseHeadLimits(t *testing.T) {
	t.Parallel()
	long := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("v", 10000) + "\r\n\r\n"
	var hd head
	if err := hd.readResponse(bufio.NewReaderSize(strings.NewReader(long), 16)); err != nil {
		t.Fatalf("a 10 KB line longer than the reader: %v", err)
	}
	if v := hd.value(&hd.fields[0]); len(v) != 10000 {
		t.Fatalf("got %d bytes, want 10000", len(v))
	}
	huge := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("v", 1000)+"\r\n", 1100) + "\r\n"
	if err := hd.readResponse(bufio.NewReader(strings.NewReader(huge))); !errors.Is(err, errHeadTooLarge) {
		t.Fatalf("got %v, want errHeadTooLarge", err)
	}
}

func TestParseFraming(t *testing.T) {
	t.Parallel()
	lengths := []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {" 7 ", 7, true}, {"", 0, false}, {"-1", 0, false},
		{"1e3", 0, false}, {"+5", 0, false}, {"1234567890123456789", 0, false},
	}
	for _, tt := range lengths {
		if n, ok := parseLength(tt.in); n != tt.n || ok != tt.ok {
			t.Errorf("parseLength(%q): got %d %v, want %d %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
	chunks := []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1a", 26, true}, {"FF;ext=1", 255, true}, {"10 ", 16, true}, {"", 0, false},
		{"g", 0, false}, {"-1", 0, false}, {"ffffffffffffffff", 0, false},
	}
	for _, tt := range chunks {
		if n, ok := parseChunkSize([]byte(tt.in)); n != tt.n || ok != tt.ok {
			t.Errorf("parseChunkSize(%q): got %d %v, want %d %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}

func FuzzReadResponseHead(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\n")
	f.Add("HTTP/1.0 101 Switching\nUpgrade: x\n  folded\n\n")
	f.Add("HTTP/1.1 404\r\nx-a:\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		var hd head
		if err := hd.readResponse(bufio.NewReaderSize(strings.NewReader(in), 16)); err != nil {
			return
		}
		if hd.status < 100 || hd.status > 999 {
			t.Fatalf("accepted status %d", hd.status)
		}
		h := http.Header{}
		hd.addTo(h)
		for k, vv := range h {
			if valid, canonical := checkKey(k); !valid || !canonical {
				t.Fatalf("accepted key %q", k)
			}
			for _, v := range vv {
				if !httpsyntax.IsFieldValue(v) || strings.TrimSpace(v) != v && strings.Trim(v, " \t") != v {
					t.Fatalf("accepted value %q", v)
				}
			}
		}
	})
}

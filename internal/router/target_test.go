package router

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRequestPath reads request lines with net/http, as both HTTP/1.1
// servers do, and checks the path handed to NormalizePath and what
// NormalizePath makes of it.
func TestRequestPath(t *testing.T) {
	tests := []struct {
		name    string
		line    string // request line
		path    string // RequestPath
		norm    string // NormalizePath of it; "" when refused
		err     error  // from RequestPath
		normErr error  // from NormalizePath
	}{
		{name: "origin-form", line: "GET /a/b?x=1", path: "/a/b", norm: "/a/b"},
		{name: "escapes kept as sent", line: "GET /a%2e%2e/%41", path: "/a%2e%2e/%41", norm: "/a../A"},
		{name: "raw hash reaches the normalizer", line: "GET /admin#x", path: "/admin#x", normErr: ErrBadPath},
		{name: "raw non-ASCII reaches the normalizer", line: "GET /caf\xc3\xa9", path: "/caf\xc3\xa9", normErr: ErrBadPath},
		{name: "raw brace escaped", line: "GET /a{b}", path: "/a{b}", norm: "/a%7Bb%7D"},
		{name: "raw semicolon", line: "GET /admin;x", path: "/admin;x", normErr: ErrBadPath},
		{name: "absolute-form", line: "GET http://api.example/a/%2e%2e/b?q", path: "/a/%2e%2e/b", norm: "/b"},
		{name: "absolute-form https upper-case", line: "GET HTTPS://api.example/a", path: "/a", norm: "/a"},
		{name: "absolute-form without path", line: "GET http://api.example", path: "", norm: "/"},
		{name: "absolute-form without path before query", line: "GET http://api.example?q=1", path: "", norm: "/"},
		{name: "absolute-form with userinfo", line: "GET http://user@api.example/a", err: ErrBadTarget},
		{name: "absolute-form with empty userinfo", line: "GET http://@api.example/a", err: ErrBadTarget},
		{name: "absolute-form without host", line: "GET http:///a", err: ErrBadTarget},
		{name: "absolute-form without authority", line: "GET http:/a", err: ErrBadTarget},
		{name: "absolute-form of another scheme", line: "GET ftp://api.example/a", err: ErrBadTarget},
		{name: "authority-form CONNECT", line: "CONNECT api.example:443", path: "", norm: "/"},
		{name: "origin-form CONNECT", line: "CONNECT /admin", path: "/admin", norm: "/admin"},
		{name: "asterisk-form", line: "OPTIONS *", path: "*", normErr: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.line + " HTTP/1.1\r\nHost: h\r\n\r\n")))
			if err != nil {
				t.Fatalf("ReadRequest(%q): %v", tt.line, err)
			}
			path, err := RequestPath(r.URL)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("RequestPath(%q) = %q, %v; want error %v", tt.line, path, err, tt.err)
				}
				return
			}
			if err != nil || path != tt.path {
				t.Fatalf("RequestPath(%q) = %q, %v; want %q", tt.line, path, err, tt.path)
			}
			norm, err := NormalizePath(path)
			if tt.normErr != nil {
				if !errors.Is(err, tt.normErr) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want error %v", path, norm, err, tt.normErr)
				}
				return
			}
			if err != nil || norm != tt.norm {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", path, norm, err, tt.norm)
			}
		})
	}
}

// TestRequestPathAuthorityFormOnlyWithConnect checks that the
// authority-form with any method but CONNECT is refused: by net/http
// ("127.0.0.1:443") or, when net/url reads the host as a scheme and the port
// as an opaque part ("api.example:443"), by RequestPath.
func TestRequestPathAuthorityFormOnlyWithConnect(t *testing.T) {
	for _, target := range []string{"api.example:443", "127.0.0.1:443", "[::1]:443", "localhost:80"} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if err != nil {
			continue
		}
		if path, err := RequestPath(r.URL); !errors.Is(err, ErrBadTarget) {
			t.Errorf("RequestPath(GET %s) = %q, %v; want %v", target, path, err, ErrBadTarget)
		}
	}
}

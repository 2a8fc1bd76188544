package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTargetForms sends every request-target form (RFC 9112 §3.2): the
// server refuses what the strict rules refuse, and hands the others to the
// handler with the host the target names (absolute-form and authority-form)
// or the Host header.
func TestTargetForms(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.Host+" "+r.URL.Scheme+" "+r.URL.Path)
	})
	_, addr := start(t, handler)
	tests := []struct {
		name, request string
		status        int
		seen          string // what the handler saw, for 200
	}{
		{"origin-form", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, "GET h  /a"},
		{"absolute-form", "GET http://t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", 200, "GET t.example http /a"},
		{"absolute-form without path", "GET http://t.example HTTP/1.1\r\nHost: h\r\n\r\n", 200, "GET t.example http "},
		{"absolute-form without Host", "GET http://t.example/a HTTP/1.1\r\n\r\n", 400, ""},
		{"absolute-form with empty Host", "GET http://t.example/a HTTP/1.1\r\nHost:\r\n\r\n", 200, "GET t.example http /a"},
		{"absolute-form with malformed Host", "GET http://t.example/a HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"absolute-form with two Hosts", "GET http://t.example/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"absolute-form HTTP/1.0 without Host", "GET http://t.example/a HTTP/1.0\r\n\r\n", 200, "GET t.example http /a"},
		{"absolute-form with userinfo", "GET http://u@t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"absolute-form, another scheme", "GET ftp://t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"authority-form CONNECT", "CONNECT t.example:443 HTTP/1.1\r\nHost: t.example:443\r\n\r\n", 200, "CONNECT t.example:443  "},
		{"authority-form CONNECT without Host", "CONNECT t.example:443 HTTP/1.1\r\n\r\n", 400, ""},
		{"authority-form CONNECT with malformed Host", "CONNECT t.example:443 HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"authority-form GET", "GET 127.0.0.1:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"origin-form CONNECT", "CONNECT /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, "CONNECT h  /a"},
		{"TRACE", "TRACE /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, "TRACE h  /a"},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200, "OPTIONS h  *"},
		{"asterisk-form without Host", "OPTIONS * HTTP/1.1\r\n\r\n", 400, ""},
		{"raw fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"raw UTF-8", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"raw control byte", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"invalid escape", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tt.request)
			res := c.read("GET")
			if res.StatusCode != tt.status {
				t.Errorf("got %d %q, want %d", res.StatusCode, res.body, tt.status)
			}
			if res.StatusCode == 200 && res.body != tt.seen {
				t.Errorf("handler saw %q, want %q", res.body, tt.seen)
			}
		})
	}
}

// TestAbsoluteFormHostCheckedWhenSentSlowly sends an absolute-form request
// a byte at a time, so the server cannot tell the target's form from what
// it has buffered when it starts reading: the Host header is still
// required, and the next request on the connection is read as usual.
func TestAbsoluteFormHostCheckedWhenSentSlowly(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" "+r.URL.Path)
	}))
	for _, tt := range []struct{ request, want string }{
		{"GET http://t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", "200 t.example /a"},
		{"GET http://t.example/a HTTP/1.1\r\nX: y\r\n\r\n", "400"},
	} {
		c := dial(t, addr)
		for i := range len(tt.request) {
			c.send(tt.request[i : i+1])
		}
		c.send(get("/next"))
		res := c.read("GET")
		got := res.Status[:3]
		if res.StatusCode == 200 {
			got += " " + res.body
		}
		if got != tt.want {
			t.Errorf("%q: got %s, want %s", strings.Split(tt.request, "\r\n")[0], got, tt.want)
		}
		if res.StatusCode == 200 {
			if next := c.read("GET"); next.body != "example.test /next" {
				t.Errorf("next request: got %d %q, want %q", next.StatusCode, next.body, "example.test /next")
			}
		}
	}
}

package h1

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTargetFormsAnsweredAsNetHTTP sends every request-target form to h1
// and to net/http with the same handler: both must refuse the same
// requests, and hand the others to the handler with the same method, host
// and path. The gateway serves plain listeners with h1 and TLS ones with
// net/http, so a rule that holds on one holds on both.
func TestTargetFormsAnsweredAsNetHTTP(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.Host+" "+r.URL.Scheme+" "+r.URL.Path+" "+r.URL.RawPath)
	})
	_, h1Addr := start(t, handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	std := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, DisableGeneralOptionsHandler: true}
	go func() { _ = std.Serve(ln) }()
	t.Cleanup(func() { _ = std.Close() })

	tests := []struct {
		name, request string
		status        int
	}{
		{"origin-form", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"absolute-form", "GET http://t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"absolute-form without path", "GET http://t.example HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"absolute-form without Host", "GET http://t.example/a HTTP/1.1\r\n\r\n", 400},
		{"absolute-form with empty Host", "GET http://t.example/a HTTP/1.1\r\nHost:\r\n\r\n", 200},
		{"absolute-form with malformed Host", "GET http://t.example/a HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"absolute-form with two Hosts", "GET http://t.example/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"absolute-form HTTP/1.0 without Host", "GET http://t.example/a HTTP/1.0\r\n\r\n", 200},
		{"absolute-form with userinfo", "GET http://u@t.example/a HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"authority-form CONNECT", "CONNECT t.example:443 HTTP/1.1\r\nHost: t.example:443\r\n\r\n", 200},
		{"authority-form CONNECT without Host", "CONNECT t.example:443 HTTP/1.1\r\n\r\n", 200},
		{"authority-form CONNECT with malformed Host", "CONNECT t.example:443 HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"authority-form GET", "GET 127.0.0.1:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"origin-form CONNECT", "CONNECT /a HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"TRACE", "TRACE /a HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"asterisk-form without Host", "OPTIONS * HTTP/1.1\r\n\r\n", 400},
		{"raw fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"raw UTF-8", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 200},
		{"raw control byte", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"invalid escape", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bodies [2]string
			for i, addr := range []string{h1Addr, ln.Addr().String()} {
				c := dial(t, addr)
				c.send(tt.request)
				res := c.read("GET")
				if res.StatusCode != tt.status {
					t.Errorf("%s: got %d %q, want %d", []string{"h1", "net/http"}[i], res.StatusCode, res.body, tt.status)
				}
				if res.StatusCode == 200 {
					bodies[i] = res.body
				}
			}
			if bodies[0] != bodies[1] {
				t.Errorf("handler saw %q with h1, %q with net/http", bodies[0], bodies[1])
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

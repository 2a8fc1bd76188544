package h1

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestFraming(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		request string
		method  string
		// want
		status    int
		cl        int64 // -1: none
		chunked   bool
		body      string
		conn      string // Connection header
		keepAlive bool
		trailer   http.Header
		ctype     string
	}{
		{
			name:    "small body gets Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") },
			request: get("/"), status: 200, cl: 5, body: "hello", keepAlive: true,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name: "handler Content-Length kept",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5000")
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = io.WriteString(w, big)
			},
			request: get("/"), status: 200, cl: 5000, body: big, keepAlive: true, ctype: "application/octet-stream",
		},
		{
			name:    "large body is chunked on HTTP/1.1",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) },
			request: get("/"), status: 200, cl: -1, chunked: true, body: big, keepAlive: true,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name:    "large body is close-delimited on HTTP/1.0",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) },
			request: "GET / HTTP/1.0\r\n\r\n", status: 200, cl: -1, body: big, keepAlive: false,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name:    "HTTP/1.0 keep-alive with a known length",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") },
			request: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: 200, cl: 2, body: "hi",
			conn: "keep-alive", keepAlive: true, ctype: "text/plain; charset=utf-8",
		},
		{
			name:    "HTTP/1.0 without keep-alive closes",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") },
			request: "GET / HTTP/1.0\r\n\r\n", status: 200, cl: 2, body: "hi", keepAlive: false,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name:    "HEAD keeps the length, sends no body",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") },
			request: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", method: "HEAD", status: 200, cl: 5, keepAlive: true,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name: "HEAD with handler Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1234")
			},
			request: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", method: "HEAD", status: 200, cl: 1234, keepAlive: true,
		},
		{
			name:    "HEAD without a body written has no length",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			request: "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", method: "HEAD", status: 200, cl: -1, keepAlive: true,
		},
		{
			name: "204 has no body and no length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
				if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
					panic(fmt.Sprintf("write on 204: got %v, want ErrBodyNotAllowed", err))
				}
			},
			request: get("/"), status: 204, cl: -1, keepAlive: true,
		},
		{
			name: "304 has no body and no length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				w.Header().Set("ETag", `"a"`)
				w.WriteHeader(http.StatusNotModified)
			},
			request: get("/"), status: 304, cl: -1, keepAlive: true,
		},
		{
			name: "declared trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				w.WriteHeader(200)
				_, _ = io.WriteString(w, "data")
				w.Header().Set("X-Sum", "42")
			},
			request: get("/"), status: 200, cl: -1, chunked: true, body: "data", keepAlive: true,
			trailer: http.Header{"X-Sum": {"42"}}, ctype: "text/plain; charset=utf-8",
		},
		{
			name: "TrailerPrefix trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, big)
				w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
			},
			request: get("/"), status: 200, cl: -1, chunked: true, body: big, keepAlive: true,
			trailer: http.Header{"X-Late": {"yes"}}, ctype: "text/plain; charset=utf-8",
		},
		{
			name:    "client Connection: close",
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "bye") },
			request: "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 200, cl: 3, body: "bye",
			conn: "close", keepAlive: false, ctype: "text/plain; charset=utf-8",
		},
		{
			name: "handler Connection: close",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				_, _ = io.WriteString(w, "bye")
			},
			request: get("/"), status: 200, cl: 3, body: "bye", conn: "close", keepAlive: false,
			ctype: "text/plain; charset=utf-8",
		},
		{
			name: "status and headers set before WriteHeader",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{}`)
			},
			request: get("/"), status: 201, cl: 2, body: "{}", keepAlive: true, ctype: "application/json",
		},
		{
			name: "unread small request body is drained",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			},
			request: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("b", 3000),
			status:  200, cl: 2, body: "ok", keepAlive: true, ctype: "text/plain; charset=utf-8",
		},
		{
			name: "request body echoed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(w, r.Body)
			},
			request: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			status:  200, cl: 5, body: "abcde", keepAlive: true, ctype: "text/plain; charset=utf-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := start(t, tt.handler)
			c := dial(t, addr)
			c.send(tt.request)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			res := c.read(method)
			if res.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Content-Length"); tt.cl >= 0 && got != fmt.Sprint(tt.cl) || tt.cl < 0 && got != "" {
				t.Errorf("Content-Length: got %q, want %d", got, tt.cl)
			}
			if got := len(res.TransferEncoding) > 0; got != tt.chunked {
				t.Errorf("chunked: got %t, want %t", got, tt.chunked)
			}
			if res.body != tt.body {
				t.Errorf("body: got %q, want %q", trim(res.body), trim(tt.body))
			}
			got := res.Header.Get("Connection")
			if res.Close && res.ProtoAtLeast(1, 1) {
				got = "close" // http.ReadResponse moves it to Close
			}
			if got != tt.conn {
				t.Errorf("Connection: got %q, want %q", got, tt.conn)
			}
			if got := res.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type: got %q, want %q", got, tt.ctype)
			}
			if res.Header.Get("Date") == "" {
				t.Error("Date: got none, want one")
			}
			for k, v := range tt.trailer {
				if got := res.Trailer.Get(k); got != v[0] {
					t.Errorf("trailer %s: got %q, want %q", k, got, v[0])
				}
				if got := res.Header.Get(k); got != "" {
					t.Errorf("header %s: got %q, want it only as a trailer", k, got)
				}
			}
			if tt.keepAlive {
				c.send(tt.request)
				if res := c.read(method); res.StatusCode != tt.status || res.body != tt.body {
					t.Errorf("second request: got %d, want %d", res.StatusCode, tt.status)
				}
			} else if !c.closed() {
				t.Error("connection: got open, want closed")
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

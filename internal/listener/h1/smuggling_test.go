package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// smuggle is what follows each attempt on the same connection: if the
// server ever read it as a request, the attempt split one client request
// into two.
const smuggle = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// TestFramingAttacksRefused sends request heads that two HTTP
// implementations in a row can frame differently (RFC 9112 §2.2, §5,
// §6.1, §6.3, §7.1), each followed by a second request on the same
// connection. Every one is refused with the status the RFC calls for and
// the connection is closed: the handler never sees the request nor the
// bytes after it.
func TestFramingAttacksRefused(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			// As the proxy does: an unreadable body is the client's
			// mistake.
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	const h = "POST /a HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name, request string
		status        int
	}{
		{"CL and TE", h + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", h + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"CL and TE with a smuggled body", h + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400},
		{"TE final not chunked", h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
		{"TE identity", h + "Transfer-Encoding: identity\r\n\r\n", 400},
		{"TE chunked twice", h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE obfuscated", h + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
		{"TE with a quote", h + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 400},
		{"TE other coding first", h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"CL twice, same value", h + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"CL twice, other values", h + "Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc", 400},
		{"CL list", h + "Content-Length: 3, 3\r\n\r\nabc", 400},
		{"CL with sign", h + "Content-Length: +3\r\n\r\nabc", 400},
		{"CL negative", h + "Content-Length: -1\r\n\r\n", 400},
		{"CL hex", h + "Content-Length: 0x3\r\n\r\nabc", 400},
		{"CL huge", h + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"CL empty", h + "Content-Length: \r\n\r\n", 400},
		{"space before colon", h + "Content-Length : 3\r\n\r\nabc", 400},
		{"tab before colon", h + "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", h + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold with tab", h + "X-A: 1\r\n\tb\r\n\r\n", 400},
		{"bare LF in the head", "POST /a HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc", 400},
		{"bare LF ends a field", h + "X-A: 1\nContent-Length: 3\r\n\r\nabc", 400},
		{"bare CR in a value", h + "X-A: 1\rContent-Length: 3\r\n\r\nabc", 400},
		{"NUL in a value", h + "X-A: 1\x00\r\n\r\n", 400},
		{"NUL in a name", h + "X-\x00A: 1\r\n\r\n", 400},
		{"two spaces in the request line", "POST  /a HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"tab in the request line", "POST\t/a HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"fragment in the target", "GET /a#x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"unknown version", "GET /a HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"lower-case version", "GET /a http/1.1\r\nHost: a\r\n\r\n", 400},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"chunk size with sign", h + "Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size 0x", h + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size with a space", h + "Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size too long", h + "Transfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size overflow", h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk data longer than its size", h + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400},
		{"chunk ends with a bare LF", h + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"chunk data ends with a bare LF", h + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400},
		{"chunk extension without a name", h + "Transfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk extension with a bad byte", h + "Transfer-Encoding: chunked\r\n\r\n3;a\x01b\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk extension unterminated quote", h + "Transfer-Encoding: chunked\r\n\r\n3;a=\"b\r\nabc\r\n0\r\n\r\n", 400},
		{"last chunk without the final CRLF", h + "Transfer-Encoding: chunked\r\n\r\n0\r\nGET", 400},
		{"trailer with obs-fold", h + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n folded\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tt.request + smuggle)
			res := c.read("POST")
			if res.StatusCode != tt.status || !strings.Contains(res.Header.Get("Content-Type"), "problem+json") {
				t.Errorf("got %d %q, want %d problem JSON", res.StatusCode, res.body, tt.status)
			}
			if !c.closed() {
				t.Error("connection: got open, want closed")
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range seen {
		if p == "/smuggled" {
			t.Fatalf("the handler saw the request after a refused one: %v", seen)
		}
	}
}

// TestStrictFramingAcceptsWhatTheRFCAllows: the strict reading still
// takes every well-formed request: chunk extensions, trailers, empty lines
// before a request line, absolute-form, OWS around values, several
// requests in a row.
func TestStrictFramingAcceptsWhatTheRFCAllows(t *testing.T) {
	var mu sync.Mutex
	var got []string
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.Host+" "+r.URL.Path+" "+string(b)+" "+r.Header.Get("X-A")+" "+r.Trailer.Get("X-T"))
		mu.Unlock()
	}))
	requests := "POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nX-A: \t spaced \t\r\n\r\n" +
		"3;ext;name=val;q=\"a \\\"b\\\"\"\r\nabc\r\n2 ; x = y\r\nde\r\n0\r\nX-T: end\r\n\r\n" +
		"\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" +
		"GET http://b.example/3 HTTP/1.1\r\nHost: ignored\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nhOsT: c\r\nx-a: lower\r\n\r\n"
	c := dial(t, addr)
	c.send(requests)
	for i := 0; i < 4; i++ {
		if res := c.read("GET"); res.StatusCode != 200 {
			t.Fatalf("request %d: got %d %q, want 200", i+1, res.StatusCode, res.body)
		}
	}
	want := []string{
		"POST a /1 abcde spaced end",
		"POST a /2 hi  ",
		"GET b.example /3   ",
		"GET c /4  lower ",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzReadRequest checks the strict reader against the standard library's:
// whatever it accepts, net/http reads the same way (method, target, host,
// framing, body), so the strict reader only ever refuses more.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		get("/"),
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"GET http://a/b HTTP/1.1\r\nHost: c\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"\r\nGET /x?q=1 HTTP/1.1\r\nHost: a:8080\r\nX-A:  v  \r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lineDone := false
		ours, err := readRequest(bufio.NewReader(strings.NewReader(string(in))), &lineDone)
		if err != nil {
			return
		}
		ourBody, ourErr := io.ReadAll(ours.Body)
		// net/http does not skip the empty lines RFC 9112 §2.2 asks a
		// server to skip before a request line; the strict reader does.
		trimmed := string(in)
		for strings.HasPrefix(trimmed, "\r\n") {
			trimmed = trimmed[2:]
		}
		std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(trimmed)))
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", err, in)
		}
		stdBody, stdErr := io.ReadAll(std.Body)
		if ours.Method != std.Method || ours.RequestURI != std.RequestURI || ours.Host != std.Host ||
			ours.ContentLength != std.ContentLength || ours.Close != std.Close {
			t.Fatalf("read differently: ours %s %s host %q len %d close %v; net/http %s %s host %q len %d close %v; input %q",
				ours.Method, ours.RequestURI, ours.Host, ours.ContentLength, ours.Close,
				std.Method, std.RequestURI, std.Host, std.ContentLength, std.Close, in)
		}
		if ourErr == nil && (stdErr != nil || string(ourBody) != string(stdBody)) {
			t.Fatalf("bodies differ: ours %q, net/http %q (%v); input %q", ourBody, stdBody, stdErr, in)
		}
	})
}

package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// This file reads a request head strictly, by RFC 9112. Where the RFC
// lets a recipient be lenient, the server is not, because a lenient
// reading is where two HTTP implementations in a row disagree about where
// one request ends and the next begins (request smuggling):
//
//   - lines end with CRLF; a bare LF or a bare CR anywhere in the head is
//     refused (§2.2);
//   - the request line is exactly method SP request-target SP version
//     (§3), the target is printable ASCII without '#', and only HTTP/1.0
//     and HTTP/1.1 are spoken (505 for other versions);
//   - a field line has no whitespace before its colon (§5.1), no obs-fold
//     continuation line (§5.2), and a value without control bytes;
//   - Host appears exactly once in HTTP/1.1 (§3.2);
//   - the body's length comes from exactly one well-formed Content-Length,
//     or from a Transfer-Encoding whose final and only coding is chunked
//     (§6.1, §6.3). A request with both is refused (400, and the
//     connection closes): it is the classic smuggling vector, and no
//     client needs it. A Transfer-Encoding whose final coding is not
//     chunked is refused (400, §6.3 item 4); another coding before
//     chunked is not implemented (501); Transfer-Encoding in HTTP/1.0 is
//     refused (400).
//
// Every refusal closes the connection, so no byte the server did not
// read as part of a request is ever read as the start of the next one.

// requestError is a request the server refuses while reading its head.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string { return e.reason }

func refuse(status int, reason string) error { return &requestError{status: status, reason: reason} }

func badRequest(reason string) error { return refuse(http.StatusBadRequest, reason) }

// maxEmptyLines is how many empty lines before a request line are skipped
// (RFC 9112 §2.2: a client may send one after a POST body).
const maxEmptyLines = 4

// readLine returns the next line without its CRLF. The slice is valid
// until the next read from br. A line that does not end in CRLF, or that
// holds a CR elsewhere, is refused. A line longer than br's buffer is
// gathered in a new slice when long is set (the head's size limit bounds
// it) and refused otherwise.
func readLine(br *bufio.Reader, long bool) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull && !long {
		return nil, badRequest("a line longer than " + strconv.Itoa(br.Size()) + " bytes")
	}
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, badRequest("a line ends with a bare LF; lines end with CRLF")
	}
	line = line[:n-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, badRequest("a bare CR in the request head")
	}
	return line, nil
}

// readRequest reads one request head from br and prepares its body.
// lineDone is set once the request line has been read, so that a head
// over the size limit can be answered 414 (the line) or 431 (the fields).
func readRequest(br *bufio.Reader, lineDone *bool) (*http.Request, error) {
	var line []byte
	var err error
	for i := 0; ; i++ {
		if line, err = readLine(br, true); err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
		if i == maxEmptyLines {
			return nil, badRequest("empty lines where the request line belongs")
		}
	}
	req, err := parseRequestLine(line)
	if err != nil {
		return nil, err
	}
	*lineDone = true
	if err := readFields(br, req); err != nil {
		return nil, err
	}
	if err := setHost(req); err != nil {
		return nil, err
	}
	if err := setBody(br, req); err != nil {
		return nil, err
	}
	req.Close = shouldClose(req)
	return req, nil
}

// parseRequestLine parses method SP request-target SP HTTP-version.
func parseRequestLine(line []byte) (*http.Request, error) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, badRequest("malformed request line")
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return nil, badRequest("malformed request line")
	}
	method, target, version := line[:sp1], rest[:sp2], rest[sp2+1:]
	if !httpsyntax.IsToken(method) {
		return nil, badRequest("malformed method")
	}
	req := &http.Request{Method: internMethod(method)}
	switch string(version) {
	case "HTTP/1.1":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) && isDigit(version[5]) &&
			version[6] == '.' && isDigit(version[7]) {
			return nil, refuse(http.StatusHTTPVersionNotSupported, "unsupported protocol version")
		}
		return nil, badRequest("malformed request line")
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return nil, badRequest("the request target holds a byte that is not allowed (space, control, '#' or non-ASCII)")
		}
	}
	req.RequestURI = string(target)
	if err := setURL(req); err != nil {
		return nil, err
	}
	return req, nil
}

// setURL parses the request target by its form (RFC 9112 §3.2).
func setURL(req *http.Request) error {
	t := req.RequestURI
	switch {
	case t[0] == '/':
		// origin-form
	case t == "*":
		if req.Method != http.MethodOptions {
			return badRequest("the asterisk-form is only for OPTIONS")
		}
		req.URL = &url.URL{Path: "*"}
		return nil
	case req.Method == http.MethodConnect:
		// authority-form: host:port
		u, err := url.Parse("http://" + t)
		if err != nil || u.Host != t || u.Port() == "" {
			return badRequest("malformed authority-form target")
		}
		req.URL = &url.URL{Host: t}
		return nil
	default:
		// absolute-form
		u, err := url.ParseRequestURI(t)
		if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" ||
			(u.Scheme != "http" && u.Scheme != "https") {
			return badRequest("malformed absolute-form target")
		}
		req.URL = u
		return nil
	}
	u, err := url.ParseRequestURI(t)
	if err != nil {
		return badRequest("malformed request target")
	}
	req.URL = u
	return nil
}

// readFields reads the header section into req.Header.
func readFields(br *bufio.Reader, req *http.Request) error {
	n := upcomingFields(br)
	h := make(http.Header, n)
	req.Header = h
	slab := make([]string, n) // backing for one-value slices, as textproto does
	for {
		line, err := readLine(br, true)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		key, value, err := parseField(line)
		if err != nil {
			return err
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
			continue
		}
		if len(slab) == 0 {
			slab = make([]string, 8)
		}
		slab[0] = value
		h[key] = slab[:1:1]
		slab = slab[1:]
	}
}

// upcomingFields estimates the number of field lines of the head from
// what br has buffered (to size the header map and its values at once).
func upcomingFields(br *bufio.Reader) int {
	buf, _ := br.Peek(br.Buffered())
	n := 0
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 || i <= 1 {
			break
		}
		n++
		buf = buf[i+1:]
	}
	return max(n, 1)
}

// parseField splits a field line into its canonical name and its value
// without surrounding whitespace.
func parseField(line []byte) (string, string, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", badRequest("obsolete line folding (a header line that starts with whitespace)")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", badRequest("malformed header line")
	}
	name := line[:colon]
	if !httpsyntax.IsToken(name) {
		if c := name[len(name)-1]; c == ' ' || c == '\t' {
			return "", "", badRequest("whitespace between a header name and its colon")
		}
		return "", "", badRequest("invalid header name")
	}
	v := line[colon+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if !httpsyntax.IsFieldValue(v) {
		return "", "", badRequest("invalid header value")
	}
	return canonicalKey(name), string(v), nil
}

// setHost takes the Host header into req.Host (RFC 9112 §3.2): required
// once in HTTP/1.1; with an absolute-form target, the target's authority
// wins.
func setHost(req *http.Request) error {
	hosts := req.Header["Host"]
	switch {
	case len(hosts) > 1:
		return badRequest("more than one Host header")
	case len(hosts) == 0 && req.ProtoMinor == 1:
		return badRequest("missing required Host header")
	}
	delete(req.Header, "Host")
	if len(hosts) == 1 && !validHost(hosts[0]) {
		return badRequest("malformed Host header") // even when the target's authority replaces it
	}
	if req.URL.Host != "" {
		req.Host = req.URL.Host
	} else if len(hosts) == 1 {
		req.Host = hosts[0]
	}
	if !validHost(req.Host) {
		return badRequest("malformed host in the request target")
	}
	return nil
}

// setBody decides the body's framing and sets req.Body, ContentLength and
// TransferEncoding.
func setBody(br *bufio.Reader, req *http.Request) error {
	cl, te := req.Header["Content-Length"], req.Header["Transfer-Encoding"]
	switch {
	case len(te) > 0:
		if len(cl) > 0 {
			return badRequest("both Content-Length and Transfer-Encoding")
		}
		if req.ProtoMinor == 0 {
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if err := checkChunked(te); err != nil {
			return err
		}
		delete(req.Header, "Transfer-Encoding")
		req.TransferEncoding = []string{"chunked"}
		req.ContentLength = -1
		// The map exists before the handler gets (copies of) the request,
		// so the trailers read at the end of the body reach every copy.
		req.Trailer = make(http.Header)
		req.Body = newChunkedBody(br, req.Trailer)
		return nil
	case len(cl) > 1:
		return badRequest("more than one Content-Length")
	case len(cl) == 1:
		n, ok := parseContentLength(cl[0])
		if !ok {
			return badRequest("malformed Content-Length")
		}
		req.ContentLength = n
		if n > 0 {
			req.Body = &lengthBody{br: br, left: n}
			return nil
		}
	}
	req.Body = http.NoBody
	return nil
}

// checkChunked checks the transfer codings: chunked, once, last.
func checkChunked(te []string) error {
	var codings []string
	for _, v := range te {
		for tok := range splitList(v) {
			codings = append(codings, tok)
		}
	}
	if len(codings) == 0 || !equalFold(codings[len(codings)-1], "chunked") {
		return badRequest("the final transfer coding is not chunked")
	}
	for _, c := range codings[:len(codings)-1] {
		if equalFold(c, "chunked") {
			return badRequest("chunked applied more than once")
		}
		return refuse(http.StatusNotImplemented, "unsupported transfer encoding")
	}
	return nil
}

// parseContentLength parses 1*DIGIT.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// shouldClose reports whether the connection closes after this request
// (RFC 9112 §9.3): HTTP/1.1 unless "Connection: close", HTTP/1.0 only
// with "Connection: keep-alive".
func shouldClose(req *http.Request) bool {
	conn := req.Header["Connection"]
	if req.ProtoMinor == 0 {
		for _, v := range conn {
			if hasToken(v, "keep-alive") {
				return false
			}
		}
		return true
	}
	for _, v := range conn {
		if hasToken(v, "close") {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// equalFold compares ASCII case-insensitively.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// splitList yields the trimmed, non-empty elements of a comma-separated
// list.
func splitList(v string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for v != "" {
			var part string
			if i := indexByte(v, ','); i >= 0 {
				part, v = v[:i], v[i+1:]
			} else {
				part, v = v, ""
			}
			for len(part) > 0 && (part[0] == ' ' || part[0] == '\t') {
				part = part[1:]
			}
			for len(part) > 0 && (part[len(part)-1] == ' ' || part[len(part)-1] == '\t') {
				part = part[:len(part)-1]
			}
			if part != "" && !yield(part) {
				return
			}
		}
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// methods are the common methods, interned so a request line does not
// allocate its method.
var methods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

func internMethod(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// commonKeys are canonical header names, interned so that reading them
// does not allocate.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Authorization",
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Date", "Dnt", "Etag", "Expect", "Forwarded", "From", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive",
		"Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-User", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Via",
		"X-Api-Key", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Traceparent", "Tracestate", "Baggage",
		"Idempotency-Key",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns the canonical form of the header name b (a
// valid token), without allocating for the common names.
func canonicalKey(b []byte) string {
	var buf [64]byte
	if len(b) <= len(buf) {
		c := buf[:len(b)]
		upper := true
		for i, x := range b {
			if upper && 'a' <= x && x <= 'z' {
				x -= 'a' - 'A'
			} else if !upper && 'A' <= x && x <= 'Z' {
				x += 'a' - 'A'
			}
			c[i] = x
			upper = x == '-'
		}
		if k, ok := commonKeys[string(c)]; ok {
			return k
		}
		return string(c)
	}
	return http.CanonicalHeaderKey(string(b))
}

// lengthBody is a body of a known length.
type lengthBody struct {
	br   *bufio.Reader
	left int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }

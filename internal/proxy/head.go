package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// maxHeadBytes bounds an upstream response head (status line and header
// fields), and separately the trailer section.
const maxHeadBytes = 1 << 20

// max1xx bounds the informational responses skipped before the final one.
const max1xx = 5

var (
	// errMalformed marks an upstream response that is not valid HTTP/1.x.
	errMalformed = errors.New("malformed upstream response")
	// errHeadTooLarge marks a response head over maxHeadBytes.
	errHeadTooLarge = errors.New("upstream response header too large")
)

// field is one header field of a parsed head. Keys that are common
// header names point to interned strings; others, and all values, are
// offsets into the head's one string.
type field struct {
	key    string
	k0, k1 int32
	v0, v1 int32
	drop   bool
}

// head parses a response head or a trailer section. Reading one makes a
// single string allocation for all names and values that are not common
// header names.
type head struct {
	status  int
	minor   int // HTTP/1.minor
	fields  []field
	scratch []byte
	str     string
	size    int
	gotByte bool   // at least one byte of the head arrived
	long    []byte // assembles lines longer than the reader's buffer
}

func (hd *head) reset() {
	hd.status, hd.minor, hd.size, hd.gotByte = 0, 0, 0, false
	clear(hd.fields)
	hd.fields = hd.fields[:0]
	hd.scratch = hd.scratch[:0]
	hd.str = ""
	if cap(hd.long) > 64<<10 {
		hd.long = nil
	}
}

func (hd *head) key(f *field) string {
	if f.key != "" {
		return f.key
	}
	return hd.str[f.k0:f.k1]
}

func (hd *head) value(f *field) string { return hd.str[f.v0:f.v1] }

// readLine returns the next line without its line ending. The slice is
// valid until the next read.
func (hd *head) readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if len(line) > 0 {
		hd.gotByte = true
	}
	if err == bufio.ErrBufferFull {
		hd.long = append(hd.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if hd.size+len(hd.long) > maxHeadBytes {
				return nil, errHeadTooLarge
			}
			line, err = br.ReadSlice('\n')
			hd.long = append(hd.long, line...)
		}
		line = hd.long
	}
	if err != nil {
		if err == io.EOF && hd.gotByte {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	hd.size += len(line)
	if hd.size > maxHeadBytes {
		return nil, errHeadTooLarge
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readResponse reads a status line and the header fields after it.
func (hd *head) readResponse(br *bufio.Reader) error {
	hd.reset()
	line, err := hd.readLine(br)
	if err != nil {
		return err
	}
	// "HTTP/1.1 200 OK": the reason phrase is optional and ignored.
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || line[7] < '0' || line[7] > '9' ||
		len(line) > 12 && line[12] != ' ' {
		return errMalformed
	}
	hd.minor = int(line[7] - '0')
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errMalformed
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return errMalformed
	}
	hd.status = status
	return hd.readFields(br)
}

// readFields reads header fields up to the empty line that ends them.
// Names are canonicalized; obsolete line folding is replaced by a space,
// as RFC 9112 allows a proxy to do.
func (hd *head) readFields(br *bufio.Reader) error {
	for {
		line, err := hd.readLine(br)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			n := len(hd.fields)
			if n == 0 {
				return errMalformed
			}
			v := bytes.TrimLeft(bytes.TrimRight(line, " \t"), " \t")
			if !httpsyntax.IsFieldValue(v) {
				return errMalformed
			}
			// The previous value is the tail of scratch.
			hd.scratch = append(hd.scratch, ' ')
			hd.scratch = append(hd.scratch, v...)
			hd.fields[n-1].v1 = int32(len(hd.scratch))
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errMalformed
		}
		k := line[:colon]
		if !canonicalize(k) {
			return errMalformed
		}
		v := bytes.TrimLeft(bytes.TrimRight(line[colon+1:], " \t"), " \t")
		if !httpsyntax.IsFieldValue(v) {
			return errMalformed
		}
		f := field{key: commonHeader[string(k)]}
		if f.key == "" {
			f.k0 = int32(len(hd.scratch))
			hd.scratch = append(hd.scratch, k...)
			f.k1 = int32(len(hd.scratch))
		}
		f.v0 = int32(len(hd.scratch))
		hd.scratch = append(hd.scratch, v...)
		f.v1 = int32(len(hd.scratch))
		hd.fields = append(hd.fields, f)
	}
	if len(hd.scratch) > 0 {
		hd.str = string(hd.scratch)
	}
	return nil
}

// canonicalize validates the header name k and rewrites it in place into
// canonical form ("content-type" → "Content-Type").
func canonicalize(k []byte) bool {
	upper := true
	for i, c := range k {
		if !httpsyntax.IsTokenByte(c) {
			return false
		}
		if upper && 'a' <= c && c <= 'z' {
			k[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			k[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return true
}

// addTo appends the fields not marked drop to h, preserving multiple
// values. All new single-value slices share one backing array.
func (hd *head) addTo(h http.Header) {
	n := 0
	for i := range hd.fields {
		if !hd.fields[i].drop {
			n++
		}
	}
	if n == 0 {
		return
	}
	strs := make([]string, n)
	for i := range hd.fields {
		f := &hd.fields[i]
		if f.drop {
			continue
		}
		k, v := hd.key(f), hd.value(f)
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		strs[0] = v
		h[k] = strs[:1:1]
		strs = strs[1:]
	}
}

// dropNamed marks the fields whose names are listed in the Connection
// header value conn.
func (hd *head) dropNamed(conn string) {
	forEachToken([]string{conn}, func(tok string) {
		for i := range hd.fields {
			if f := &hd.fields[i]; strings.EqualFold(hd.key(f), tok) {
				f.drop = true
			}
		}
	})
}

// commonHeader interns the canonical names of frequent response headers,
// so that parsing them allocates nothing.
var commonHeader = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Pragma",
		"Proxy-Authenticate", "Proxy-Connection", "Referrer-Policy", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Powered-By", "X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()

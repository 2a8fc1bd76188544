package h1

import (
	"bufio"
	"io"
	"net/http"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// chunkedBody reads a chunked request body strictly (RFC 9112 §7.1):
// a chunk size is 1 to 16 hex digits, a chunk extension is
// ;name[=token or quoted-string] with optional whitespace around the
// separators, every line ends with CRLF, chunk data is followed by CRLF,
// and the trailer section is read as header fields are. Anything else
// fails the body with errMalformedChunk: the request cannot be framed, so
// the connection closes.
type chunkedBody struct {
	br      *bufio.Reader
	trailer http.Header
	left    int64 // bytes of the current chunk not yet read
	done    bool
	err     error
}

// errMalformedChunk is a chunked body the server cannot frame.
var errMalformedChunk = &requestError{status: http.StatusBadRequest, reason: "malformed chunked encoding"}

func newChunkedBody(br *bufio.Reader, trailer http.Header) *chunkedBody {
	return &chunkedBody{br: br, trailer: trailer}
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.left == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 && err == nil {
		err = b.chunkEnd()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *chunkedBody) Close() error { return nil }

// chunkEnd reads the CRLF after a chunk's data.
func (b *chunkedBody) chunkEnd() error {
	c1, err := b.br.ReadByte()
	if err != nil {
		return err
	}
	c2, err := b.br.ReadByte()
	if err != nil {
		return err
	}
	if c1 != '\r' || c2 != '\n' {
		return errMalformedChunk
	}
	return nil
}

// nextChunk reads a chunk-size line; for the last chunk it reads the
// trailer section too.
func (b *chunkedBody) nextChunk() error {
	line, err := readLine(b.br, false)
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if _, ok := err.(*requestError); ok {
			return errMalformedChunk
		}
		return err
	}
	size, ok := parseChunkSize(line)
	if !ok {
		return errMalformedChunk
	}
	if size > 0 {
		b.left = size
		return nil
	}
	b.done = true
	return b.readTrailers()
}

// parseChunkSize parses chunk-size [ chunk-ext ].
func parseChunkSize(line []byte) (int64, bool) {
	i := 0
	var n int64
	for ; i < len(line); i++ {
		d, ok := httpsyntax.Unhex(line[i])
		if !ok {
			break
		}
		if i == 16 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || n < 0 {
		return 0, false
	}
	return n, validChunkExt(line[i:])
}

// validChunkExt checks *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
func validChunkExt(s []byte) bool {
	ws := func() {
		for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
	}
	token := func() bool {
		i := 0
		for i < len(s) && httpsyntax.IsTokenByte(s[i]) {
			i++
		}
		s = s[i:]
		return i > 0
	}
	for {
		ws()
		if len(s) == 0 {
			return true
		}
		if s[0] != ';' {
			return false
		}
		s = s[1:]
		ws()
		if !token() {
			return false
		}
		ws()
		if len(s) == 0 || s[0] != '=' {
			continue
		}
		s = s[1:]
		ws()
		if len(s) > 0 && s[0] == '"' {
			if !quoted(&s) {
				return false
			}
		} else if !token() {
			return false
		}
	}
}

// quoted consumes a quoted-string from *s.
func quoted(s *[]byte) bool {
	b := (*s)[1:]
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			*s = b[i+1:]
			return true
		case c == '\\':
			i++
			if i == len(b) || b[i] < ' ' && b[i] != '\t' || b[i] == 0x7f {
				return false
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return false
		}
	}
	return false
}

// readTrailers reads the trailer section after the last chunk into the
// request's Trailer. Fields that frame or route a message are not accepted
// from a trailer (RFC 9110 §6.5.1) and are dropped.
func (b *chunkedBody) readTrailers() error {
	for {
		line, err := readLine(b.br, false)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			if _, ok := err.(*requestError); ok {
				return errMalformedChunk
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		key, value, err := parseField(line)
		if err != nil {
			return errMalformedChunk
		}
		switch key {
		case "Content-Length", "Transfer-Encoding", "Host", "Trailer", "Connection",
			"Content-Type", "Content-Encoding", "Authorization", "Cookie":
			continue
		}
		b.trailer[key] = append(b.trailer[key], value)
	}
}

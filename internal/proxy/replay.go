package proxy

import (
	"errors"
	"io"
)

// errNoReplay is returned by replayBody.getBody when the body was larger
// than the replay buffer.
var errNoReplay = errors.New("request body is too large to be sent again")

// replayBody records a request body while an attempt sends it, up to a
// limit, so that a failed attempt can be sent again to another target.
// Bytes past the limit are not kept and make the body unreplayable; a body
// of unknown length is recorded the same way. Reads after a rewind come
// from the recording first, then from the client.
type replayBody struct {
	src   io.ReadCloser
	buf   []byte
	limit int
	pos   int  // read position in buf
	eof   bool // src is exhausted
	over  bool // more than limit bytes were read: no replay
}

func newReplayBody(src io.ReadCloser, limit int) *replayBody {
	return &replayBody{src: src, limit: limit}
}

// Read reads the recording first, then the client's body, recording what
// it reads while under the limit.
func (b *replayBody) Read(p []byte) (int, error) {
	if b.pos < len(b.buf) {
		n := copy(p, b.buf[b.pos:])
		b.pos += n
		return n, nil
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.src.Read(p)
	if n > 0 && !b.over {
		if len(b.buf)+n > b.limit {
			b.over, b.buf, b.pos = true, nil, 0
		} else {
			b.buf = append(b.buf, p[:n]...)
			b.pos = len(b.buf)
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close closes the client's body.
func (b *replayBody) Close() error { return b.src.Close() }

// replayable reports whether everything read so far was recorded.
func (b *replayBody) replayable() bool { return !b.over }

// rewind makes the next Read start from the beginning again; it reports
// false when the body cannot be replayed.
func (b *replayBody) rewind() bool {
	if b.over {
		return false
	}
	b.pos = 0
	return true
}

// getBody is http.Request.GetBody for a recorded body.
func (b *replayBody) getBody() (io.ReadCloser, error) {
	if !b.rewind() {
		return nil, errNoReplay
	}
	return b, nil
}

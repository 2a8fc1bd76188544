package edge

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// BodyLimits bound how slowly a client may send a request body.
type BodyLimits struct {
	// Idle is the longest wait for the next body bytes (0: none).
	Idle time.Duration
	// MinRate is the lowest average rate in bytes per second, checked once
	// the body has been arriving for Idle (0: none).
	MinRate int64
}

// deadliner is the part of a server's ResponseWriter that bounds reads of
// the request body (h1's response and x/net/http2's responseWriter both
// have it).
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// aLongTimeAgo is a deadline in the past.
var aLongTimeAgo = time.Unix(1, 0)

// countingBody counts request body bytes into the Exchange and enforces
// the body limits: a read waits at most Idle for bytes, and a body that
// arrives slower than MinRate on average is cut off. Both end the body
// with pipeline.ErrSlowBody, which the proxy answers with 408.
type countingBody struct {
	rc     io.ReadCloser
	ex     *pipeline.Exchange
	limits BodyLimits
	dl     deadliner // nil when the server cannot bound reads
	start  time.Time // first read
	set    time.Time // when the read deadline was last moved
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.dl != nil {
		if err := b.beforeRead(); err != nil {
			return 0, err
		}
	}
	n, err := b.rc.Read(p)
	b.ex.BytesIn += int64(n)
	if err != nil && b.dl != nil {
		switch {
		case err == io.EOF:
			// The deadline must not outlive the body: the server reads the
			// connection again (to see the client go, or the next request).
			_ = b.dl.SetReadDeadline(time.Time{})
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = pipeline.ErrSlowBody
		}
	}
	return n, err
}

// beforeRead moves the read deadline Idle ahead (at most every Idle/8, so
// that small reads do not pay for it each time) and checks the rate.
func (b *countingBody) beforeRead() error {
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	} else if b.limits.MinRate > 0 {
		if since := now.Sub(b.start); since > b.limits.Idle && float64(b.ex.BytesIn) < since.Seconds()*float64(b.limits.MinRate) {
			// A deadline in the past: the server's own reads of what is
			// left fail at once, so the connection closes instead of
			// waiting on the slow client.
			_ = b.dl.SetReadDeadline(aLongTimeAgo)
			return pipeline.ErrSlowBody
		}
	}
	if now.Sub(b.set) > b.limits.Idle/8 {
		b.set = now
		_ = b.dl.SetReadDeadline(now.Add(b.limits.Idle))
	}
	return nil
}

func (b *countingBody) Close() error { return b.rc.Close() }

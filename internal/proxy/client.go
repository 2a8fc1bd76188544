package proxy

import (
	"net/http"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Client speaks one protocol to a service's targets. The Handler's attempt
// loop (target choice, breakers, retries, deadlines, fallbacks, the error
// mapping) is the same for every protocol; a Client carries one attempt
// at a time per Call and keeps its connections in the target's pool.
// Each service chooses its Client at compile time: HTTP/1.1 (NewHTTP1)
// is the default.
type Client interface {
	// Begin prepares one attempt of a.R at a.Target. The Call is used by
	// one goroutine and released once.
	Begin(a Attempt) Call
	// Describe returns the request the client would send for a, without
	// sending it: what explain shows as the upstream request.
	Describe(a Attempt) pipeline.UpstreamRequest
}

// Attempt is what one attempt at a target needs.
type Attempt struct {
	W  http.ResponseWriter
	R  *http.Request
	Ex *pipeline.Exchange
	// Target is the picked target.
	Target *upstream.Target
	// Host is the Host header (or :authority) the upstream receives.
	Host string
	// Upgrade is the protocol the client asked to switch to ("" for none).
	Upgrade string
	// Deadline bounds the whole exchange, body and tunnel included (zero:
	// unbounded).
	Deadline time.Time
}

// Call is one attempt in progress.
type Call interface {
	// Exchange sends the request and reads the final response head (an
	// informational 1xx is skipped; a 101 to an upgrade request is final).
	Exchange() error
	// Status is the final response's status after Exchange succeeded.
	Status() int
	// Relay sends the response to the client and streams its body, or
	// completes the protocol switch of a 101 and tunnels both ways.
	Relay() error
	// Progress says how far the call got, for retries and the access log.
	Progress() Progress
	// Release ends the call; a response that was not relayed closes its
	// connection.
	Release()
}

// Progress is how far a Call got.
type Progress struct {
	// Sent is when the request was first written (zero: never).
	Sent time.Time
	// BodyRead reports that the request body was read from: a retry
	// needs to rewind it.
	BodyRead bool
	// WroteHeader reports that the response head went to the client.
	WroteHeader bool
	// Hijacked reports that the client connection was taken over by a
	// protocol switch.
	Hijacked bool
}

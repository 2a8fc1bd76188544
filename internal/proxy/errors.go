package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/upstream"
)

// errBadTarget marks an upstream request target (path or query) with bytes
// a request line cannot carry; only a faulty rewrite produces one.
var errBadTarget = errors.New("upstream request target has invalid characters")

// clientBodyError is a failure to read the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// clientWriteError is a failure to write the response to the client.
type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "write response: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

// StatusFor maps an error from forwarding a request to the status the
// client gets; it is the one place that does. Client cancellation, or a
// client that stopped reading the response, is 499 (logged, not sent); no target is 503; a body over a size limit is 413
// and an unreadable request body 400; a failed dial is 502 even when it
// timed out (the connect timeout); other timeouts are 504; everything
// else the upstream did (reset, early close, malformed response) is 502.
// A nil error is 200.
func StatusFor(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var (
		maxBytes *http.MaxBytesError
		body     *clientBodyError
		write    *clientWriteError
		op       *net.OpError
		ne       net.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &write):
		return problem.StatusClientClosedRequest
	case errors.Is(err, upstream.ErrNoTarget):
		return http.StatusServiceUnavailable
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &body):
		return http.StatusBadRequest
	case errors.Is(err, errBadTarget):
		return http.StatusInternalServerError
	case errors.As(err, &op) && op.Op == "dial":
		return http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// detailFor is the client-safe explanation for a status.
func detailFor(status int, err error) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "no upstream target is available"
	case http.StatusGatewayTimeout:
		return "upstream did not answer in time"
	case http.StatusRequestEntityTooLarge:
		return "request body is too large"
	case http.StatusBadRequest:
		return "request body could not be read"
	case http.StatusInternalServerError:
		return "request could not be forwarded"
	}
	if errors.Is(err, errMalformed) || errors.Is(err, errHeadTooLarge) || errors.Is(err, errBadSwitch) {
		return "upstream sent an invalid response"
	}
	return "upstream connection failed"
}

// isReset reports whether err is the peer resetting or having closed the
// connection under a write.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// fail records err in ex and answers the client. When the client went
// away the status is 499 and nothing useful can be written; when the
// response head was already sent, the response is aborted so the client
// sees it truncated (net/http semantics).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, ex *plugin.Exchange, err error, wroteHeader bool) {
	if ctxErr := r.Context().Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	ex.Err = err
	if wroteHeader {
		panic(http.ErrAbortHandler)
	}
	status := StatusFor(err)
	switch status {
	case problem.StatusClientClosedRequest:
		// The client is gone: the status is for the access log.
		w.WriteHeader(status)
		return
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	problem.Write(w, r, status, "", detailFor(status, err))
}

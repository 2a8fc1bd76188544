package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
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
		retried  *statusError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &write):
		return problem.StatusClientClosedRequest
	case errors.Is(err, upstream.ErrNoTarget):
		return http.StatusServiceUnavailable
	case errors.As(err, &retried):
		switch retried.status {
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return retried.status
		}
		return http.StatusBadGateway
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, pipeline.ErrSlowBody):
		return http.StatusRequestTimeout
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
		var open *upstream.OpenError
		if errors.As(err, &open) {
			return "the service is failing; requests are paused while it recovers"
		}
		return "no upstream target is available"
	case http.StatusGatewayTimeout:
		return "upstream did not answer in time"
	case http.StatusRequestEntityTooLarge:
		return "request body is too large"
	case http.StatusBadRequest:
		return "request body could not be read"
	case http.StatusRequestTimeout:
		return "the request body arrived too slowly"
	case http.StatusInternalServerError:
		return "request could not be forwarded"
	}
	if errors.Is(err, errTunnel) {
		return "the gateway does not open tunnels"
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
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, ex *pipeline.Exchange, err error, wroteHeader bool) {
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
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if h.fallback != nil {
			h.fallback.write(w, r)
			return
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter(err))
		}
	}
	problem.Write(w, r, status, "", detailFor(status, err))
}

// retryAfter is the Retry-After value for a 503: the time until an open
// breaker admits requests again, in whole seconds rounded up, or 1.
func retryAfter(err error) string {
	var open *upstream.OpenError
	if errors.As(err, &open) && open.RetryAfter > time.Second {
		return strconv.FormatInt(int64((open.RetryAfter+time.Second-1)/time.Second), 10)
	}
	return "1"
}

// statusError stands for an upstream answer that was to be retried when
// no retry could follow (no target left, or the client's deadline): the
// client gets the status it stands for.
type statusError struct{ status int }

func (e *statusError) Error() string {
	return "upstream answered " + strconv.Itoa(e.status) + " and could not be retried"
}

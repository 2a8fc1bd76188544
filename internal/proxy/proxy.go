// Package proxy forwards a routed request to its service and streams the
// answer back: header hygiene, the HTTP/1.1 upstream client, protocol
// upgrades, and the mapping of upstream errors to statuses.
//
// # Flow of one request
//
//	ServeHTTP
//	 ├─ Service.Pick → target (503 + Retry-After when none)
//	 ├─ exchange (client.go): idle conn or dial → write head + body → read head
//	 │    └─ reused conn closed under us, request replayable → once more on a new conn
//	 ├─ 101 to an upgrade request → tunnel (upgrade.go)
//	 ├─ relay: head into w.Header(), WriteHeader, stream the body
//	 │    └─ clean end → conn back to the pool; otherwise closed
//	 └─ error → ex.Err, StatusFor → problem.Write (or abort if the head was sent)
//
// The upstream client is synchronous: the handler goroutine does all the
// I/O, with pooled buffers and no per-connection goroutines, and it speaks
// HTTP/1.1 to every upstream whatever the client spoke. Deadlines are set
// on the connection (connect, response header, total) rather than with a
// timer per request, and a client that goes away unblocks the upstream
// connection at once through context.AfterFunc.
//
// # Streaming
//
// Bodies are never buffered whole. A response without Content-Length
// (chunked or ended by close) or of type text/event-stream is a stream:
// what was written to the client is flushed before every read that may
// wait on the upstream, so each event reaches the client as soon as it
// arrives, while bytes that arrive together go out together. Trailers of a
// chunked response are passed on as trailers. Informational responses
// (100 Continue, 103 Early Hints) from the upstream are skipped.
//
// # Limits
//
// The client is synchronous: it writes the whole request body before it
// reads the response, so an upstream that streams its answer while still
// reading a large upload (full duplex) is not supported; a final answer
// sent before the body was read (413, 401) is still relayed.
package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Default timeouts, used when Options.Timeouts leaves one at zero.
const (
	DefaultConnectTimeout        = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
)

// Options configure a Handler.
type Options struct {
	// Service is where requests go. Required.
	Service *upstream.Service
	// Timeouts bound each upstream exchange: Connect (default 5s) the dial,
	// ResponseHeader (default 60s) the wait from sending the request to
	// receiving the response head, Total (0 = unbounded) everything,
	// including the body and upgraded connections.
	Timeouts config.Timeouts
	// PreserveHost sends the client's Host header upstream instead of the
	// target's.
	PreserveHost bool
	// HostHeader, when set, is the Host header sent upstream.
	HostHeader string
	// Logger receives the rare events that concern operators (header
	// fields dropped as unsafe). Nil discards.
	Logger *slog.Logger
	// Tunnels tracks upgraded (WebSocket) connections so the gateway can
	// close them on shutdown. It outlives config reloads. Nil means
	// upgraded connections are not tracked.
	Tunnels *Tunnels
	// Retries retries failed attempts (nil: one attempt). Budget caps them
	// (nil: no cap beyond Retries.Attempts).
	Retries *config.Retries
	Budget  RetryBudget
	// Fallback answers instead of a gateway-made 502, 503 or 504.
	Fallback *config.Fallback
	// Client speaks to the service's targets; nil means HTTP/1.1
	// (NewHTTP1 with Timeouts, Logger and Tunnels).
	Client Client
}

// Handler forwards requests to one service: it is the terminal of a route
// of kind proxy. It is safe for concurrent use and holds no per-request
// state.
type Handler struct {
	svc          *upstream.Service
	client       Client
	total        time.Duration
	preserveHost bool
	hostHeader   string
	retry        *retryPolicy
	fallback     *fallback
}

var _ pipeline.Terminal = (*Handler)(nil)

// New returns a Handler for o.
func New(o Options) *Handler {
	h := &Handler{
		svc:          o.Service,
		client:       o.Client,
		total:        o.Timeouts.Total.D(),
		preserveHost: o.PreserveHost,
		hostHeader:   o.HostHeader,
		retry:        newRetryPolicy(o.Retries, o.Budget),
		fallback:     newFallback(o.Fallback),
	}
	if h.client == nil {
		h.client = NewHTTP1(HTTP1Options{Connect: o.Timeouts.Connect.D(), ResponseHeader: o.Timeouts.ResponseHeader.D(),
			Logger: o.Logger, Tunnels: o.Tunnels})
	}
	return h
}

// host is the Host header the upstream receives from target t: one a
// plugin set, the service's host_header, the client's (preserve_host), or
// the target's.
func (h *Handler) host(r *http.Request, ex *pipeline.Exchange, t *upstream.Target) string {
	switch {
	case ex.UpstreamHost != "":
		return ex.UpstreamHost
	case h.hostHeader != "":
		return h.hostHeader
	case h.preserveHost && r.Host != "":
		return r.Host
	}
	return t.Host
}

// Describe says where the request would go: the service, its balancer and
// targets, and the request the first available target would receive.
func (h *Handler) Describe(r *http.Request, ex *pipeline.Exchange) pipeline.Plan {
	p := pipeline.Plan{Kind: "proxy"}
	if h.svc == nil {
		return p
	}
	cfg := h.svc.Config()
	p.Service, p.LoadBalancer = h.svc.Name(), cfg.LoadBalancer.Algorithm
	if p.LoadBalancer == "" {
		p.LoadBalancer = "round_robin"
	}
	now := time.Now()
	var first *upstream.Target
	for _, t := range h.svc.Targets() {
		ok := t.Available(now)
		p.Targets = append(p.Targets, pipeline.PlanTarget{URL: t.URL, Weight: t.Weight(), Available: ok})
		if first == nil && ok {
			first = t
		}
	}
	if first == nil {
		return p
	}
	up := h.client.Describe(Attempt{R: r, Ex: ex, Target: first, Host: h.host(r, ex, first), Upgrade: upgradeType(r)})
	p.Upstream = &up
	return p
}

// ServeHTTP forwards r to a target of the service and streams the response
// to w. The request's pipeline.Exchange supplies the upstream path, the
// client address and whether the peer is trusted; ServeHTTP records the
// target, the upstream duration and any error in it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil {
		ex = standaloneExchange(r)
	}
	if h.svc == nil {
		h.fail(w, r, ex, upstream.ErrNoTarget, false)
		return
	}
	start := time.Now()
	probe, err := h.svc.Admit(start)
	if err != nil {
		h.fail(w, r, ex, err, false)
		return
	}
	res, end := h.forward(w, r, ex, start)
	if end.IsZero() {
		end = time.Now()
	}
	h.svc.Done(end, probe, res)
}

// forward runs the attempts of one request: pick a target, exchange, and
// either retry (another target, after a backoff) or relay the answer. It
// returns the final outcome for the service breaker and, when it read the
// clock after the last attempt, that reading (zero otherwise).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, ex *pipeline.Exchange, start time.Time) (upstream.Result, time.Time) {
	upgrade := upgradeType(r)
	pol := h.retry
	retryable := pol != nil && upgrade == "" && pol.allows(r)
	var rb *replayBody
	if pol != nil {
		pol.request(start)
	}
	if retryable {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && r.ContentLength <= int64(pol.bufferBody) {
			rb = newReplayBody(r.Body, pol.bufferBody)
			r.Body, r.GetBody = rb, rb.getBody
		}
	}
	var deadline time.Time
	if h.total > 0 {
		deadline = start.Add(h.total)
	}
	var tried upstream.Tried
	req := upstream.PickRequest{Tried: &tried}
	req.Key, req.HasKey = h.svc.HashKey(r, ex.ClientIP)
	attempts := 1
	if pol != nil {
		attempts = pol.attempts
	}
	var lastErr error
	for n := 1; ; n++ {
		p, err := h.svc.Pick(&req)
		if err != nil {
			if lastErr == nil {
				lastErr = err
			}
			h.fail(w, r, ex, lastErr, false)
			return upstream.ConnFailure, time.Time{}
		}
		tried.Add(p.Pos)
		t := p.Target
		ex.Upstream = t.Addr
		c := h.client.Begin(Attempt{W: w, R: r, Ex: ex, Target: t, Host: h.host(r, ex, t),
			Upgrade: upgrade, Deadline: deadline})
		t.Begin()
		at := start // the first attempt starts with the request
		if n > 1 {
			at = time.Now()
		}
		err = c.Exchange()
		status := 0
		if err == nil {
			status = c.Status()
		}
		res := classify(r.Context(), err, status)
		if n < attempts && h.shouldRetry(r, c, err, status, retryable, rb) {
			now := time.Now()
			h.svc.Report(p, res, now.Sub(at), now)
			if err == nil {
				err = &statusError{status: status}
			}
			lastErr = err
			c.Release() // closes the connection: the answer is not read
			t.End()
			if !pol.wait(r.Context(), n, deadline) || (rb != nil && !rb.rewind()) {
				h.fail(w, r, ex, lastErr, false)
				return res, time.Time{}
			}
			h.svc.CountRetry()
			ex.Attempts = n + 1
			continue
		}
		lat := time.Since(at)
		if err == nil {
			err = c.Relay()
			if err != nil && res == upstream.Success {
				res = classify(r.Context(), err, 0)
			}
		}
		pr := c.Progress()
		if err != nil && !pr.Sent.IsZero() && ex.UpstreamDuration == 0 {
			ex.UpstreamDuration = time.Since(pr.Sent)
		}
		wrote, hijacked := pr.WroteHeader, pr.Hijacked
		c.Release()
		t.End()
		end := time.Now()
		h.svc.Report(p, res, lat, end)
		switch {
		case err == nil:
		case hijacked:
			// The connection is no longer the server's: nothing to write.
			ex.Err = err
		default:
			h.fail(w, r, ex, err, wrote)
		}
		return res, end
	}
}

// shouldRetry decides whether a failed attempt is tried again: a failure
// to connect always may be (nothing was sent), other failures and the
// configured statuses only for retryable requests whose body can be sent
// again; the client must still be there, and the retry budget must allow
// it.
func (h *Handler) shouldRetry(r *http.Request, c Call, err error, status int, retryable bool, rb *replayBody) bool {
	pol := h.retry
	if pol == nil || r.Context().Err() != nil {
		return false
	}
	switch {
	case err == nil:
		if !retryable || !pol.retriesStatus(status) {
			return false
		}
	case isDialError(err):
		// Nothing was sent; the body was not read.
	case !retryable || classify(r.Context(), err, 0) != upstream.ConnFailure || errors.Is(err, errBadSwitch):
		return false
	}
	if c.Progress().BodyRead && (rb == nil || !rb.replayable()) {
		return false
	}
	return pol.withdraw(time.Now())
}

// standaloneExchange stands in for the edge's Exchange when the handler
// runs without one (tests, embedding).
func standaloneExchange(r *http.Request) *pipeline.Exchange {
	ex := &pipeline.Exchange{Start: time.Now(), UpstreamPath: r.URL.EscapedPath()}
	if ip, err := netip.ParseAddr(peerIP(r.RemoteAddr)); err == nil {
		ex.ClientIP = ip.Unmap()
	}
	return ex
}

package edge

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// State is everything the edge keeps for one request, in one allocation:
// the Exchange the plugins see, the response recorder, the body counter,
// and the series that count the request when it ends.
type State struct {
	listener int // index of the public listener the request came in on
	ex       pipeline.Exchange
	rec      recorder
	body     countingBody
	observer Observer
}

// Listener is the index of the public listener the request came in on.
func (st *State) Listener() int { return st.listener }

// Exchange returns the request's Exchange.
func (st *State) Exchange() *pipeline.Exchange { return &st.ex }

// Routed records the route the request matched: its names, the
// normalized path it matched, the path the upstream receives and the
// path captures, and the series that count it.
func (st *State) Routed(route, service, path, upstreamPath string, params []pipeline.Param, o Observer) {
	ex := &st.ex
	ex.Route, ex.Service, ex.Path, ex.UpstreamPath, ex.Params = route, service, path, upstreamPath, params
	if o != nil {
		st.observer = o
	}
}

// recorder passes writes through and keeps the status and byte count in the
// Exchange. It unwraps for http.ResponseController (flush, hijack, deadlines).
type recorder struct {
	w           http.ResponseWriter
	ex          *pipeline.Exchange
	wroteHeader bool
}

func (rc *recorder) Header() http.Header { return rc.w.Header() }

func (rc *recorder) WriteHeader(code int) {
	if !rc.wroteHeader && code >= 200 || code == http.StatusSwitchingProtocols {
		rc.wroteHeader = true
		rc.ex.Status = code
	}
	rc.w.WriteHeader(code)
}

func (rc *recorder) Write(b []byte) (int, error) {
	if !rc.wroteHeader {
		rc.wroteHeader = true
		rc.ex.Status = http.StatusOK
	}
	n, err := rc.w.Write(b)
	rc.ex.BytesOut += int64(n)
	return n, err
}

// Flush lets handlers that type-assert http.Flusher stream through the edge.
func (rc *recorder) Flush() {
	if !rc.wroteHeader {
		rc.wroteHeader = true
		rc.ex.Status = http.StatusOK
	}
	_ = http.NewResponseController(rc.w).Flush()
}

// Hijack lets handlers that type-assert http.Hijacker take over the
// connection (protocol upgrades).
func (rc *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rc.w).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (rc *recorder) Unwrap() http.ResponseWriter { return rc.w }

// newState prepares the per-request state for r.
func newState(w http.ResponseWriter, r *http.Request, trusted []netip.Prefix, limits BodyLimits) *State {
	st := &State{}
	st.ex.Start = time.Now()
	st.rec = recorder{w: w, ex: &st.ex}
	if r.Body != nil && r.Body != http.NoBody {
		st.body = countingBody{rc: r.Body, ex: &st.ex, limits: limits}
		if limits.Idle > 0 {
			st.body.dl, _ = w.(deadliner)
		}
	}
	st.ex.ClientIP, st.ex.PeerTrusted = ClientIP(r, trusted)
	return st
}

// ClientIP returns the real client address and whether the TCP peer is a
// trusted proxy. For a trusted peer, X-Forwarded-For is read from the right:
// the first address that is not itself a trusted proxy is the client (as
// NGINX's real_ip_recursive). Malformed entries end the walk.
func ClientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap()
	if !isTrusted(peer, trusted) {
		return peer, false
	}
	client := peer
	values := r.Header["X-Forwarded-For"]
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				part, v = v[j+1:], v[:j]
			} else {
				part, v = v, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				return client, true
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client, true
			}
		}
	}
	return client, true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package cache

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/portico-gateway/portico/internal/httpcache"
)

// captureMode is what a captureWriter does with the upstream's answer.
type captureMode uint8

const (
	modePass      captureMode = iota // relayed to the client
	modeHidden                       // the client got a 304; the body is only captured
	modeSwallowed                    // discarded: a 304 refresh or stale-if-error is served instead
)

// captureWriter sits between the proxy and the client. It holds the
// upstream's header until WriteHeader, decides there whether the answer
// replaces a stale entry (304, or an error within stale-if-error) or is
// relayed, and tees a storable body into a buffer of at most
// max_object_size while streaming it to the client.
type captureWriter struct {
	w  http.ResponseWriter
	h  http.Header // the upstream's header, until WriteHeader
	hd *handler
	lk *lookup

	stale             *httpcache.Entry
	sf                *httpcache.Freshness
	conditional       bool // validators were sent upstream
	clientConditional bool // the client's request was conditional
	reqTime           time.Time

	wrote    bool
	status   int
	mode     captureMode
	decision httpcache.Storability
	capture  bool
	stored   http.Header // a copy of the upstream's header, for the entry
	buf      []byte
}

// Header is the upstream's header until WriteHeader, then the client's
// (for trailers), unless the answer is swallowed.
func (cw *captureWriter) Header() http.Header {
	if cw.wrote && cw.mode != modeSwallowed {
		return cw.w.Header()
	}
	return cw.h
}

func serverError(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// WriteHeader decides the fate of the answer.
func (cw *captureWriter) WriteHeader(code int) {
	if cw.wrote {
		return
	}
	if code < 200 {
		cw.w.WriteHeader(code)
		return
	}
	cw.wrote, cw.status = true, code
	if cw.stale != nil {
		if code == http.StatusNotModified && cw.conditional ||
			serverError(code) && cw.sf.InStaleIfError() {
			cw.mode = modeSwallowed
			return
		}
	}
	lk := cw.lk
	if lk.r.Method == http.MethodGet && !lk.noStore {
		cc := httpcache.ParseResponseControl(cw.h)
		d := cw.hd.policy.Storable(code, cw.h, &cc, &lk.rq)
		if d == httpcache.StorePrivate && lk.consumer == "" {
			d = httpcache.NotStorable
		}
		cl := int64(-1)
		if vs := cw.h["Content-Length"]; len(vs) == 1 {
			if n, err := strconv.ParseInt(vs[0], 10, 64); err == nil {
				cl = n
			}
		}
		if cl > cw.hd.maxObject {
			d = httpcache.NotStorable
		}
		cw.decision = d
		if d != httpcache.NotStorable {
			cw.capture = true
			cw.stored = cw.h.Clone()
			if cl > 0 {
				cw.buf = make([]byte, 0, cl)
			}
		}
	}
	status := "portico; fwd=" + lk.fwd + "; fwd-status=" + strconv.Itoa(code)
	if cw.capture {
		status += "; stored"
	}
	dst := cw.w.Header()
	for k, vs := range cw.h {
		if k != "Cache-Status" {
			dst[k] = vs
		}
	}
	addCacheStatus(dst, cw.h["Cache-Status"], status)
	if cw.hd.xCache {
		dst["X-Cache"] = xMiss
	}
	if cw.clientConditional && code == http.StatusOK && httpcache.NotModified(lk.r.Header, cw.h) {
		delete(dst, "Content-Length")
		cw.mode = modeHidden
		cw.w.WriteHeader(http.StatusNotModified)
		return
	}
	cw.w.WriteHeader(code)
}

// Write tees p into the capture buffer and on to the client.
func (cw *captureWriter) Write(p []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.capture {
		if int64(len(cw.buf)+len(p)) > cw.hd.maxObject {
			cw.capture, cw.buf = false, nil
		} else {
			cw.buf = append(cw.buf, p...)
		}
	}
	if cw.mode != modePass {
		return len(p), nil
	}
	return cw.w.Write(p)
}

// Flush sends what was written to the client.
func (cw *captureWriter) Flush() { _ = cw.FlushError() }

// FlushError is Flush reporting the error (for http.ResponseController).
func (cw *captureWriter) FlushError() error {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.mode != modePass {
		return nil
	}
	return http.NewResponseController(cw.w).Flush()
}

// Unwrap returns the client's writer.
func (cw *captureWriter) Unwrap() http.ResponseWriter { return cw.w }

// Hijack hands over the client's connection (upgrades normally bypass the
// cache before reaching here).
func (cw *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(cw.w).Hijack()
}

// finish runs after the upstream answered completely: it serves the
// refreshed or stale entry when the answer was swallowed, stores a
// captured response, and returns the entry waiters may be served.
func (cw *captureWriter) finish(sl *slot, respTime time.Time) *httpcache.Entry {
	hd, lk := cw.hd, cw.lk
	switch {
	case !cw.wrote:
		return nil
	case cw.mode == modeSwallowed && cw.status == http.StatusNotModified:
		e := httpcache.Refreshed(cw.stale, cw.h, cw.reqTime, respTime)
		// The 304 may have changed what the entry says about caching:
		// keep it only if it may still be stored where it is (a private
		// answer only under the consumer's own key).
		cc := httpcache.ParseResponseControl(e.Header)
		switch d := hd.policy.Storable(e.Status, e.Header, &cc, &lk.rq); {
		case d == httpcache.StoreShared, d == httpcache.StorePrivate && lk.private.base != "" && sl.base == lk.private.base:
			hd.put(lk, sl, e)
		default:
			if err := hd.store.Delete(storeCtx(lk.r), sl.key); err != nil {
				hd.storeError(err)
			}
		}
		f := hd.policy.Freshness(e, time.Now())
		hd.m.Revalidated.Inc()
		hd.serve(cw.w, lk.r, e, f.Age, "portico; fwd="+lk.fwd+"; fwd-status=304; ttl="+ttlParam(&f), true)
		return e
	case cw.mode == modeSwallowed:
		f := hd.policy.Freshness(cw.stale, time.Now())
		hd.m.Stale.Inc()
		hd.serve(cw.w, lk.r, cw.stale, f.Age, "portico; fwd=stale; fwd-status="+strconv.Itoa(cw.status)+
			"; ttl="+ttlParam(&f)+"; detail=stale-if-error", true)
		return cw.stale
	}
	hd.m.Miss.Inc()
	if !cw.capture {
		if cw.stale != nil && sl != nil && cw.status < 500 {
			// The resource changed into something not storable: forget
			// the old response.
			if err := hd.store.Delete(storeCtx(lk.r), sl.key); err != nil {
				hd.storeError(err)
			}
		}
		return nil
	}
	e := &httpcache.Entry{Status: cw.status, Header: cw.stored, Body: cw.buf,
		RequestTime: cw.reqTime, ResponseTime: respTime}
	delete(e.Header, "Set-Cookie")
	if _, ok := e.Header["Date"]; !ok {
		e.Header["Date"] = []string{respTime.UTC().Format(http.TimeFormat)}
	}
	if cw.status != http.StatusNoContent && cw.status != http.StatusNotModified {
		e.Header["Content-Length"] = []string{strconv.Itoa(len(cw.buf))}
	}
	if names := httpcache.VaryNames(e.Header); len(names) > 0 {
		e.VaryNames, e.VaryValues = names, httpcache.VaryValues(names, lk.r.Header)
	}
	target := &lk.shared
	if cw.decision == httpcache.StorePrivate {
		target = &lk.private
	}
	if !hd.put(lk, target, e) {
		return nil
	}
	if cw.decision == httpcache.StorePrivate && lk.flightKey != lk.private.base {
		return nil
	}
	return e
}

// statusWriter records the status (and Location fields) of a response it
// relays, adding the bypass Cache-Status.
type statusWriter struct {
	http.ResponseWriter
	xCache    bool
	status    int
	locations []string
}

var bypassStatus = "portico; fwd=bypass"

// WriteHeader adds Cache-Status and records the status.
func (sw *statusWriter) WriteHeader(code int) {
	if code >= 200 && sw.status == 0 {
		sw.status = code
		h := sw.ResponseWriter.Header()
		addCacheStatus(h, h["Cache-Status"], bypassStatus)
		if sw.xCache {
			h["X-Cache"] = xMiss
		}
		sw.locations = append(append(sw.locations, h["Location"]...), h["Content-Location"]...)
	}
	sw.ResponseWriter.WriteHeader(code)
}

// Write writes p, with a 200 head first if none was written.
func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(p)
}

// Flush sends what was written to the client.
func (sw *statusWriter) Flush() { _ = sw.FlushError() }

// FlushError is Flush reporting the error (for http.ResponseController).
func (sw *statusWriter) FlushError() error {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(sw.ResponseWriter).Flush()
}

// Unwrap returns the client's writer.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// Hijack hands over the client's connection.
func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(sw.ResponseWriter).Hijack()
}

// discard is the writer of background refreshes: nobody reads it.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
func (d discard) Flush()                      {}

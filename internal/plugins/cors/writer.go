package cors

import (
	"bufio"
	"net"
	"net/http"
)

// writer applies the policy to the response head when it is written:
// WriteHeader with a final status, or the first Write or Flush. 1xx
// answers, including 101 Switching Protocols, pass untouched.
type writer struct {
	w       http.ResponseWriter
	p       *policy
	origin  [1]string // the request's Origin, echoed when allowed
	allowed bool
	done    bool
}

// Header returns the underlying writer's header map.
func (cw *writer) Header() http.Header { return cw.w.Header() }

// WriteHeader applies the policy before a final status goes out.
func (cw *writer) WriteHeader(code int) {
	if !cw.done && code >= 200 {
		cw.apply()
	}
	cw.w.WriteHeader(code)
}

// Write applies the policy if no status was written yet.
func (cw *writer) Write(b []byte) (int, error) {
	if !cw.done {
		cw.apply()
	}
	return cw.w.Write(b)
}

// Flush sends buffered data, applying the policy first if needed.
func (cw *writer) Flush() {
	if !cw.done {
		cw.apply()
	}
	if f, ok := cw.w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(cw.w).Flush()
}

// Hijack hands the connection over (protocol upgrades).
func (cw *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	cw.done = true
	return http.NewResponseController(cw.w).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (cw *writer) Unwrap() http.ResponseWriter { return cw.w }

// apply replaces the Access-Control-* headers with the policy's.
func (cw *writer) apply() {
	cw.done = true
	p := cw.p
	h := cw.w.Header()
	stripAccessControl(h)
	if cw.allowed {
		if p.anyOrigin {
			h[hAllowOrigin] = p.star
		} else {
			h[hAllowOrigin] = cw.origin[:]
		}
		if p.credentials {
			h[hAllowCredentials] = p.true1
		}
		if p.exposeHeaders != nil {
			h[hExposeHeaders] = p.exposeHeaders
		}
	}
	if p.vary {
		addVary(h, p.varyOrigin)
	}
}

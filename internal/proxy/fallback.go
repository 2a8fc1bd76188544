package proxy

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// fallback is a route's compiled fallback response: what the client gets
// instead of a gateway-made 502, 503 or 504.
type fallback struct {
	status int
	header http.Header
	body   []byte
}

func newFallback(c *config.Fallback) *fallback {
	if c == nil {
		return nil
	}
	f := &fallback{status: c.Status, header: make(http.Header, len(c.Headers)+2), body: []byte(c.Body)}
	if f.status == 0 {
		f.status = config.DefaultFallbackStatus
	}
	for k, v := range c.Headers {
		f.header.Set(k, v)
	}
	if f.header.Get("Content-Type") == "" {
		ct := "text/plain; charset=utf-8"
		if b := strings.TrimSpace(c.Body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
			ct = "application/json"
		}
		f.header.Set("Content-Type", ct)
	}
	f.header.Set("Content-Length", strconv.Itoa(len(f.body)))
	return f
}

// write answers with the fallback. Headers the failed attempt may have
// left in w are replaced.
func (f *fallback) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range f.header {
		h[k] = v
	}
	w.WriteHeader(f.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
}

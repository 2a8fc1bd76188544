package plugintest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Request is what one request looked like when it reached the upstream.
type Request struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	// Body is the request body, read whole before answering; empty when a
	// custom handler answers (it owns the body then).
	Body          string
	ContentLength int64
}

// Upstream is a real HTTP server that records every request reaching it
// (on arrival, before answering) and answers with its handler.
type Upstream struct {
	*httptest.Server

	mu   sync.Mutex
	reqs []Request
}

// NewUpstream starts an upstream answering with respond; nil reads the
// whole request body into the record and answers 200 "upstream".
func NewUpstream(t testing.TB, respond http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen := Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Host: r.Host, Header: r.Header.Clone(), ContentLength: r.ContentLength}
		if respond == nil {
			body, _ := io.ReadAll(r.Body)
			seen.Body = string(body)
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, seen)
		u.mu.Unlock()
		if respond != nil {
			respond.ServeHTTP(w, r)
			return
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

// Count returns how many requests reached the upstream.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// Last returns the latest request the upstream saw, or nil.
func (u *Upstream) Last() *Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	s := u.reqs[len(u.reqs)-1]
	return &s
}

// Requests returns every request the upstream saw, oldest first.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

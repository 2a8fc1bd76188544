package forwardauth

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
)

// authService is a real HTTP authorization service that decides by the
// request's Authorization header, counts its calls and records what it
// was sent:
//
//	Bearer good            200, X-User-ID: user-1, X-User-Roles: admin
//	Bearer no-roles        200, X-User-ID: user-2, no X-User-Roles
//	Bearer app / other     200, X-Consumer: app / other
//	Bearer stranger        200, X-Consumer: nobody (no such consumer)
//	Bearer no-store        200 with Cache-Control: no-store
//	Bearer max-age-1       200 with Cache-Control: max-age=1
//	Bearer bad             401, WWW-Authenticate and a JSON body
//	Bearer forbidden       403, a text body, and a header not to pass on
//	Bearer huge            401 with a body over 64 KiB
//	Bearer slow            answers only after the call was given up
//	Bearer boom            500
//	Bearer echo            200 when the body is "expected body"
//	(none)                 302 to the login page, with Set-Cookie
type authService struct {
	srv   *httptest.Server
	calls atomic.Int64

	mu   sync.Mutex
	seen []seenCall
}

// seenCall is one call as the service received it.
type seenCall struct {
	Method string
	URI    string // the call's own request URI
	Header http.Header
	Body   string
}

func newAuthService(t testing.TB) *authService {
	t.Helper()
	a := &authService{}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *authService) serve(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.seen = append(a.seen, seenCall{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)})
	a.mu.Unlock()
	h := w.Header()
	switch r.Header.Get("Authorization") {
	case "Bearer good":
		h.Set("X-User-ID", "user-1")
		h.Set("X-User-Roles", "admin")
		h.Set("X-Not-Copied", "1")
	case "Bearer no-roles":
		h.Set("X-User-ID", "user-2")
	case "Bearer app":
		h.Set("X-Consumer", "app")
	case "Bearer other":
		h.Set("X-Consumer", "other")
	case "Bearer stranger":
		h.Set("X-Consumer", "nobody")
	case "Bearer no-store":
		h.Set("Cache-Control", "no-store")
		h.Set("X-User-ID", "user-ns")
	case "Bearer max-age-1":
		h.Set("Cache-Control", "private, max-age=1")
		h.Set("X-User-ID", "user-ma")
	case "Bearer bad":
		h.Set("WWW-Authenticate", `Bearer realm="auth", error="invalid_token"`)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_token"}`)
	case "Bearer forbidden":
		h.Set("Content-Type", "text/plain")
		h.Set("X-Internal-Reason", "policy 7")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "forbidden by policy")
	case "Bearer huge":
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, strings.Repeat("x", maxAnswerBody+1))
	case "Bearer slow":
		<-r.Context().Done() // the gateway gives up first
	case "Bearer boom":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "Bearer echo":
		if string(body) != "expected body" {
			w.WriteHeader(http.StatusForbidden)
		}
	case "":
		h.Set("Location", "https://login.example/?rd="+r.Header.Get("X-Forwarded-Uri"))
		h.Set("Set-Cookie", "login_state=abc; Path=/; HttpOnly")
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusFound)
		_, _ = io.WriteString(w, `<a href="https://login.example/">log in</a>`)
	default:
		w.WriteHeader(http.StatusUnauthorized)
	}
}

// last returns the latest call the service received.
func (a *authService) last(t testing.TB) seenCall {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		t.Fatal("got no call at the authorization service, want one")
	}
	return a.seen[len(a.seen)-1]
}

// closedURL returns an http URL where nothing listens: connections are
// refused.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/check"
}

// consumers are the test config's consumers.
func consumers() []config.Consumer {
	return []config.Consumer{
		{Name: "app", ID: "app-1", Groups: []string{"ops"}, Credentials: config.Credentials{
			APIKeys: []config.Secret{appKey}}},
		{Name: "other", ID: "other-1", Groups: []string{"dev"}},
		{Name: "guest", ID: "guest-1", Groups: []string{"public"}},
	}
}

const appKey = "app-key-0123456789abcdef"

// gateway starts a test gateway whose route has forward_auth with settings
// (YAML, with the service's URL as url unless settings set one) and the
// other plugins.
func gateway(t testing.TB, a *authService, settings string, opts authtest.Options, others ...pipeline.Configured) *authtest.Gateway {
	t.Helper()
	if !strings.Contains(settings, "url:") {
		settings = "url: " + a.srv.URL + "/check\n" + settings
	}
	if opts.Consumers == nil {
		opts.Consumers = consumers()
	}
	plugins := append([]pipeline.Configured{authtest.Configure(t, Registration(), settings)}, others...)
	g := authtest.Start(t, opts, plugins...)
	g.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return g
}

// bearer returns the header of a request with token ("" for none) and the
// name/value pairs kv.
func bearer(token string, kv ...string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

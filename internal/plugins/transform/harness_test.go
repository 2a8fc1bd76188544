package transform

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/upstream"
)

// seen is what one request looked like at the upstream.
type seen struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	Body                         string
	ContentLength                int64
}

// testUpstream is a real HTTP server that records requests and answers
// with respond (default: "ok").
type testUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t testing.TB, respond http.HandlerFunc) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Host: r.Host, Header: r.Header.Clone(), Body: string(body), ContentLength: r.ContentLength})
		u.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the latest request the upstream saw, or nil.
func (u *testUpstream) last() *seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	s := u.reqs[len(u.reqs)-1]
	return &s
}

func (u *testUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// gwOptions are the surroundings of a test gateway.
type gwOptions struct {
	consumers []config.Consumer
	// params fills ex.Params from the request path's named captures.
	params *regexp.Regexp
}

// testGateway is a real edge (creating the Exchange as the gateway does)
// → the plugin chain → internal/proxy → the upstream.
type testGateway struct {
	URL    string
	client *http.Client
}

func startGateway(t testing.TB, upURL string, opts gwOptions, plugins ...plugin.Configured) *testGateway {
	t.Helper()
	reg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = reg.Close() })
	svc, err := reg.Service(config.Service{Name: "svc", URL: upURL})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := consumer.New(opts.consumers)
	if err != nil {
		t.Fatalf("consumers: %s", err.Error())
	}
	h, err := plugin.Chain(withGate(plugins), plugin.BuildEnv{Route: "orders", Service: "svc",
		Consumers: cons, Shared: plugin.NewShared()}, proxy.New(proxy.Options{Service: svc}))
	if err != nil {
		t.Fatalf("build chain: %s", err.Error())
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &plugin.Exchange{Start: time.Now(), RequestID: "req-1", Route: "orders", Service: "svc",
			UpstreamPath: r.URL.EscapedPath()}
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ex.ClientIP = ap.Addr().Unmap()
		}
		if re := opts.params; re != nil {
			if m := re.FindStringSubmatch(r.URL.Path); m != nil {
				for i, name := range re.SubexpNames() {
					if name != "" {
						ex.Params = append(ex.Params, plugin.Param{Name: name, Value: m[i]})
					}
				}
			}
		}
		h.ServeHTTP(w, r.WithContext(plugin.NewContext(r.Context(), ex)))
	}))
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		edge.Close()
	})
	return &testGateway{URL: edge.URL, client: &http.Client{Transport: tr}}
}

// withGate adds the auth gate when the chain authenticates, as the
// gateway's compiler does.
func withGate(chain []plugin.Configured) []plugin.Configured {
	if !slices.ContainsFunc(chain, func(c plugin.Configured) bool { return c.Reg.Phase == plugin.PhaseAuthenticate }) {
		return chain
	}
	reg := authgate.Registration()
	return append(slices.Clone(chain), plugin.Configured{Reg: &reg, Spec: reg.Spec(), Scope: plugin.ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(authgate.Name)})
}

// response is the client's view of one exchange.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request; kv are header name/value pairs.
func (g *testGateway) do(t testing.TB, method, target, body string, kv ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	return g.send(t, req)
}

func (g *testGateway) send(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func reqPlugin(t testing.TB, src string) plugin.Configured {
	t.Helper()
	return authtest.Configure(t, RequestRegistration(), src)
}

func respPlugin(t testing.TB, src string) plugin.Configured {
	t.Helper()
	return authtest.Configure(t, ResponseRegistration(), src)
}

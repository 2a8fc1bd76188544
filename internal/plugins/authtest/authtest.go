// Package authtest runs authentication plugins the way the gateway does,
// for their tests: a real edge server that strips identity headers and
// creates the request's Exchange, the route's plugin chain (with the auth
// gate added as the gateway adds it), and a real upstream that records
// what reached it.
package authtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"go.yaml.in/yaml/v3"
)

// Configure decodes src (YAML settings, "" for the defaults) into reg's
// Spec strictly and validates it, as the plugin registry does.
func Configure(t testing.TB, reg plugin.Registration, src string) plugin.Configured {
	t.Helper()
	c, err := TryConfigure(reg, src)
	if err != nil {
		t.Fatalf("configure %s: %s", reg.Name, err.Error())
	}
	return c
}

// TryConfigure is Configure returning the decode or validation error.
func TryConfigure(reg plugin.Registration, src string) (plugin.Configured, error) {
	p := config.Path{}.Key("routes[0].plugins").Key(reg.Name)
	spec := reg.Spec()
	if src != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			return plugin.Configured{}, err
		}
		if err := (&config.Config{}).DecodeNode(doc.Content[0], p, spec); err != nil {
			return plugin.Configured{}, err
		}
	}
	if err := spec.Validate(p); err != nil {
		return plugin.Configured{}, err
	}
	return plugin.Configured{Reg: &reg, Spec: spec, Scope: plugin.ScopeRoute, Path: p}, nil
}

// Options are the surroundings of a test gateway.
type Options struct {
	// Consumers are the config's consumers.
	Consumers []config.Consumer
	// Shared outlives the gateway when set (to test reloads); default new.
	Shared *plugin.Shared
	// Route names the route. Default "test".
	Route string
}

// Seen is what one request looked like when it reached the upstream.
type Seen struct {
	Header   http.Header
	RawQuery string
}

// Gateway is a running test gateway.
type Gateway struct {
	// URL is the edge's base URL.
	URL string
	// Identity are the canonical header names stripped from every request.
	Identity []string

	mu   sync.Mutex
	seen []Seen
}

// Build compiles plugins into a chain in front of an upstream and starts
// an edge; it returns the chain's build error instead of failing.
func Build(t testing.TB, opts Options, plugins ...plugin.Configured) (*Gateway, error) {
	t.Helper()
	g := &Gateway{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.seen = append(g.seen, Seen{Header: r.Header.Clone(), RawQuery: r.URL.RawQuery})
		g.mu.Unlock()
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)

	reg, err := consumer.New(opts.Consumers)
	if err != nil {
		t.Fatalf("consumers: %s", err.Error())
	}
	if opts.Shared == nil {
		opts.Shared = plugin.NewShared()
	}
	if opts.Route == "" {
		opts.Route = "test"
	}
	chain := withGate(plugins)
	identity := make(map[string]bool)
	for _, c := range chain {
		if c.Reg.IdentityHeaders != nil {
			for _, h := range c.Reg.IdentityHeaders(c.Spec) {
				identity[textproto.CanonicalMIMEHeaderKey(h)] = true
			}
		}
	}
	for h := range identity {
		g.Identity = append(g.Identity, h)
	}
	slices.Sort(g.Identity)
	h, err := plugin.Chain(chain, plugin.BuildEnv{Route: opts.Route, Service: "svc",
		Consumers: reg, Shared: opts.Shared}, proxy)
	if err != nil {
		return nil, err
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As the gateway's snapshot does: strip, then create the Exchange.
		for _, name := range g.Identity {
			delete(r.Header, name)
		}
		ex := &plugin.Exchange{Start: time.Now(), Route: opts.Route, Service: "svc", RequestID: "req-1"}
		h.ServeHTTP(w, r.WithContext(plugin.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(edge.Close)
	g.URL = edge.URL
	return g, nil
}

// Start is Build failing the test on a build error.
func Start(t testing.TB, opts Options, plugins ...plugin.Configured) *Gateway {
	t.Helper()
	g, err := Build(t, opts, plugins...)
	if err != nil {
		t.Fatalf("build chain: %s", err.Error())
	}
	return g
}

// withGate adds the auth gate with its defaults when the chain has an
// authentication plugin and no gate, as the gateway's compiler does.
func withGate(chain []plugin.Configured) []plugin.Configured {
	hasAuth := slices.ContainsFunc(chain, func(c plugin.Configured) bool { return c.Reg.Phase == plugin.PhaseAuthenticate })
	hasGate := slices.ContainsFunc(chain, func(c plugin.Configured) bool { return c.Reg.Name == authgate.Name })
	if !hasAuth || hasGate {
		return chain
	}
	reg := authgate.Registration()
	return append(slices.Clone(chain), plugin.Configured{Reg: &reg, Spec: reg.Spec(), Scope: plugin.ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(authgate.Name)})
}

// Result is the client's view of one request, and the upstream's.
type Result struct {
	Status int
	Header http.Header
	Body   string
	// Upstream is what reached the upstream; nil when the request was
	// refused before it.
	Upstream *Seen
}

// Do sends a GET for pathAndQuery with header. Requests to one Gateway
// must not run concurrently.
func (g *Gateway) Do(t testing.TB, pathAndQuery string, header http.Header) Result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+pathAndQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return g.Send(t, req)
}

// Send sends req (aimed at g.URL).
func (g *Gateway) Send(t testing.TB, req *http.Request) Result {
	t.Helper()
	g.mu.Lock()
	before := len(g.seen)
	g.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := Result{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	g.mu.Lock()
	if len(g.seen) > before {
		s := g.seen[len(g.seen)-1]
		res.Upstream = &s
	}
	g.mu.Unlock()
	return res
}

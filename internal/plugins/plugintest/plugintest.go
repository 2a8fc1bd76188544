// Package plugintest runs plugins the way the gateway does, for their
// tests: the gateway's own edge (internal/edge: identity headers
// stripped, the request's Exchange created with the client address from
// the TCP peer and trusted proxies) in front of one route (its names and
// path captures), the route's plugin chain assembled by the gateway's own
// rules (pipeline.Registry.Assemble: the auth gate added where the
// compiler adds it), and the real internal/proxy in front of a real
// upstream that records every request reaching it. The edge is served
// over plain HTTP, or with Options.TLS by the gateway's own TLS listener
// (certificates, client certificates).
package plugintest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/edge"
	"github.com/portico-gateway/portico/internal/listener"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
	"go.yaml.in/yaml/v3"
)

// RequestID is the request ID of every Exchange the edge creates.
const RequestID = "req-1"

// Configure decodes src (YAML settings, "" for the defaults) into reg's
// Spec strictly and validates it, as the plugin registry does.
func Configure(t testing.TB, reg pipeline.Registration, src string) pipeline.Configured {
	t.Helper()
	c, err := TryConfigure(reg, src)
	if err != nil {
		t.Fatalf("configure %s: %s", reg.Name, err.Error())
	}
	return c
}

// TryConfigure is Configure returning the decode or validation error.
func TryConfigure(reg pipeline.Registration, src string) (pipeline.Configured, error) {
	p := config.Path{}.Key("routes[0].plugins").Key(reg.Name)
	spec := reg.Spec()
	if src != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			return pipeline.Configured{}, err
		}
		if err := (&config.Config{}).DecodeNode(doc.Content[0], p, spec); err != nil {
			return pipeline.Configured{}, err
		}
	}
	if err := spec.Validate(p); err != nil {
		return pipeline.Configured{}, err
	}
	return pipeline.Configured{Reg: &reg, Spec: spec, Scope: pipeline.ScopeRoute, Path: p}, nil
}

// CheckConfigure configures reg from settings and checks the outcome: with
// want nil the settings must be valid; otherwise the error must contain
// every string of want. It returns the error.
func CheckConfigure(t testing.TB, reg pipeline.Registration, settings string, want []string) error {
	t.Helper()
	_, err := TryConfigure(reg, settings)
	switch {
	case want == nil && err != nil:
		t.Fatalf("got error %q, want none", err.Error())
	case want != nil && err == nil:
		t.Fatalf("got no error, want %q", want)
	}
	if err == nil {
		return nil
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("got error %q, want it to contain %q", err.Error(), w)
		}
	}
	return err
}

// Options are the surroundings of a test gateway.
type Options struct {
	// Route and Service name the route and its service. Defaults "test"
	// and "svc".
	Route, Service string
	// Consumers are the config's consumers.
	Consumers []config.Consumer
	// Shared outlives the gateway when set (to test reloads); default new.
	Shared *pipeline.Shared

	// Upstream receives the proxied requests; default a new one answering
	// with Respond.
	Upstream *Upstream
	// Respond answers at a new default upstream (nil: 200 "upstream").
	Respond http.Handler
	// UpstreamURL, when set, is where the proxy sends requests instead of
	// a recording upstream (Gateway.Upstream is then nil).
	UpstreamURL string

	// Listen is the edge's listen address. Default "127.0.0.1:0".
	Listen string
	// TLS, when set, serves the edge over HTTPS through the gateway's own
	// listener (internal/listener) with these settings: certificates,
	// min_version (default "1.2") and client_auth. Default: plain HTTP.
	TLS *config.TLS
	// RootCAs verify the listener's certificate for Client (with TLS).
	RootCAs *x509.CertPool
	// TrustedProxies are the peers whose X-Forwarded-For is believed, as
	// the gateway's trusted_proxies.
	TrustedProxies []netip.Prefix
	// Params fills Exchange.Params from the named captures of the
	// request path, as a regex path match does.
	Params *regexp.Regexp
	// Telemetry receives the plugins' metrics (nil: none are recorded).
	Telemetry *telemetry.Telemetry
}

// Gateway is a running test gateway.
type Gateway struct {
	// URL is the edge's base URL.
	URL string
	// Identity are the canonical header names stripped from every request.
	Identity []string
	// Upstream is the recording upstream (nil with Options.UpstreamURL).
	Upstream *Upstream
	// Client talks to the edge without asking for compression, so bodies
	// arrive as the gateway sent them.
	Client *http.Client

	roots *x509.CertPool // with Options.TLS
}

// Build compiles plugins into a chain in front of the proxy and an
// upstream and starts an edge; it returns the chain's build error instead
// of failing.
func Build(t testing.TB, opts Options, plugins ...pipeline.Configured) (*Gateway, error) {
	t.Helper()
	if opts.Route == "" {
		opts.Route = "test"
	}
	if opts.Service == "" {
		opts.Service = "svc"
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Shared == nil {
		opts.Shared = pipeline.NewShared()
	}
	g := &Gateway{Upstream: opts.Upstream}
	target := opts.UpstreamURL
	if target == "" {
		if g.Upstream == nil {
			var respond http.HandlerFunc
			if opts.Respond != nil {
				respond = opts.Respond.ServeHTTP
			}
			g.Upstream = NewUpstream(t, respond)
		}
		target = g.Upstream.URL
	}
	ups := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = ups.Close() })
	svc, err := ups.Service(config.Service{Name: opts.Service, URL: target})
	if err != nil {
		t.Fatalf("service: %s", err.Error())
	}
	tunnels := proxy.NewTunnels()
	t.Cleanup(tunnels.CloseAll)
	cons, err := consumer.New(opts.Consumers)
	if err != nil {
		t.Fatalf("consumers: %s", err.Error())
	}
	reg := registryOf(plugins)
	chain := reg.Assemble(pipeline.Levels{Route: plugins})
	g.Identity = reg.IdentityHeaders(chain)
	lc := config.Listener{Name: "test", Listen: opts.Listen, TLS: opts.TLS}
	h, err := pipeline.Chain(chain, pipeline.BuildEnv{Route: opts.Route, Service: opts.Service,
		Listeners: []config.Listener{lc}, Consumers: cons, Shared: opts.Shared, Telemetry: opts.Telemetry},
		proxy.New(proxy.Options{Service: svc, Tunnels: tunnels}))
	if err != nil {
		return nil, err
	}
	// The gateway's own edge, in front of one route: it strips the
	// identity headers and creates the Exchange; the route is the one
	// every request matches.
	front := &edge.Edge{Trusted: opts.TrustedProxies, Headers: edge.NewHeaders(g.Identity, nil, config.UnderscoresProtected),
		Next: edge.HandlerFunc(func(st *edge.State, w http.ResponseWriter, r *http.Request) {
			st.Exchange().RequestID = RequestID
			path := r.URL.EscapedPath()
			norm, err := router.NormalizePath(path)
			if err != nil {
				norm = ""
			}
			st.Routed(opts.Route, opts.Service, norm, path, params(opts.Params, r.URL.Path), nil)
			h.ServeHTTP(w, r)
		})}
	if opts.TLS != nil {
		g.roots = opts.RootCAs
		g.URL = serveTLS(t, lc, front)
		g.Client = g.client(nil)
		t.Cleanup(g.Client.CloseIdleConnections)
		return g, nil
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(front)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	g.Client = g.client(nil)
	t.Cleanup(g.Client.CloseIdleConnections)
	return g, nil
}

// serveTLS serves h on the gateway's own TLS listener configured as lc
// until the test ends, and returns its base URL.
func serveTLS(t testing.TB, lc config.Listener, h http.Handler) string {
	t.Helper()
	tlsc := *lc.TLS
	if tlsc.MinVersion == "" {
		tlsc.MinVersion = config.DefaultTLSMinVersion
	}
	lc.TLS = &tlsc
	l, err := listener.Open(listener.Options{Config: lc, Handler: h,
		Server: config.Server{ReadHeaderTimeout: config.Duration(10 * time.Second)}})
	if err != nil {
		t.Fatalf("open the TLS listener: %s", err.Error())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Serve()
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return "https://" + l.Addr()
}

// client returns a client of the edge that does not ask for compression
// and, on TLS, trusts the roots and presents cert (nil: none) whenever
// the listener asks for a certificate.
func (g *Gateway) client(cert *tls.Certificate) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if g.roots != nil || cert != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: g.roots}
		if cert != nil {
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return cert, nil
			}
		}
	}
	return &http.Client{Transport: tr}
}

// WithClientCertificate returns a copy of g whose Client presents cert
// (nil: none) whenever the listener asks for one, whichever CAs it names.
// Its connections are closed when the test ends.
func (g *Gateway) WithClientCertificate(t testing.TB, cert *tls.Certificate) *Gateway {
	c := *g
	c.Client = c.client(cert)
	t.Cleanup(c.Client.CloseIdleConnections)
	return &c
}

// Start is Build failing the test on a build error.
func Start(t testing.TB, opts Options, plugins ...pipeline.Configured) *Gateway {
	t.Helper()
	g, err := Build(t, opts, plugins...)
	if err != nil {
		t.Fatalf("build chain: %s", err.Error())
	}
	return g
}

// registryOf is the registry of the plugins of a test chain and of the
// plugins the gateway may add to it (the auth gate), so that the chain is
// assembled by the gateway's own rules (pipeline.Registry.Assemble).
func registryOf(cs []pipeline.Configured) *pipeline.Registry {
	regs := []pipeline.Registration{authgate.Registration()}
	for _, c := range cs {
		if c.Reg.Name != authgate.Name {
			regs = append(regs, *c.Reg)
		}
	}
	return pipeline.NewRegistry(regs, nil)
}

// params returns the named captures of re in path.
func params(re *regexp.Regexp, path string) []pipeline.Param {
	if re == nil {
		return nil
	}
	m := re.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	var out []pipeline.Param
	for i, name := range re.SubexpNames() {
		if name != "" {
			out = append(out, pipeline.Param{Name: name, Value: m[i]})
		}
	}
	return out
}

// Header returns a header of name/value pairs, added in order.
func Header(kv ...string) http.Header {
	h := make(http.Header, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// NewRequest returns a request for method and target (path and query,
// relative to the edge) with body (nil for none) and header.
func (g *Gateway) NewRequest(t testing.TB, method, target string, body io.Reader, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	return req
}

// Result is the client's view of one request, and the upstream's.
type Result struct {
	Status int
	Header http.Header
	Body   string
	// Upstream is what reached the upstream; nil when the request was
	// refused before it (or the gateway has no recording upstream).
	Upstream *Request
}

// Do sends method target with body ("" for none) and the header
// name/value pairs kv.
func (g *Gateway) Do(t testing.TB, method, target, body string, kv ...string) Result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return g.Send(t, g.NewRequest(t, method, target, rd, Header(kv...)))
}

// Send sends req (aimed at g.URL) and reads the whole response. Requests
// to one Gateway's upstream must not run concurrently, for Result.Upstream
// to be theirs.
func (g *Gateway) Send(t testing.TB, req *http.Request) Result {
	t.Helper()
	before := 0
	if g.Upstream != nil {
		before = g.Upstream.Count()
	}
	resp, body := g.Fetch(t, req)
	res := Result{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if g.Upstream != nil && g.Upstream.Count() > before {
		res.Upstream = g.Upstream.Last()
	}
	return res
}

// Fetch sends req and returns the response with its body read (still
// encoded as sent) and closed; trailers are in the response.
func (g *Gateway) Fetch(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %s", err.Error())
	}
	return resp, body
}

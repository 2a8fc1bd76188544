package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
)

// origin is a real upstream that counts the requests it gets and answers
// with a handler the test may change.
type origin struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
	seen    []*http.Request
}

func newOrigin(t *testing.T, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{handler: h}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.seen = append(o.seen, r.Clone(r.Context()))
		h := o.handler
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) set(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

// last is the last request the origin got.
func (o *origin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		return nil
	}
	return o.seen[len(o.seen)-1]
}

// answer returns a handler writing body with the header fields kv
// (name, value, name, value…).
func answer(status int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// gwOptions shape a test gateway.
type gwOptions struct {
	route     string
	keyAuth   bool   // put key_auth and the auth gate in front
	keyAuthIn string // key_auth's settings ("": its defaults)
	anonymous string // the gate's anonymous consumer
	consumers []config.Consumer
	shared    *pipeline.Shared
	store     *config.Store
	tel       *telemetry.Telemetry // nil: a new one
}

// gw is a test gateway: an edge that creates the Exchange as the gateway
// does, the route's chain with the cache plugin, and the real proxy.
type gw struct {
	url    string
	shared *pipeline.Shared
	tel    *telemetry.Telemetry
	client *http.Client
}

func startGateway(t *testing.T, o *origin, settings string, opts gwOptions) *gw {
	t.Helper()
	g, err := buildGateway(t, o.URL, settings, opts)
	if err != nil {
		t.Fatalf("build: %s", err.Error())
	}
	return g
}

func buildGateway(t *testing.T, originURL, settings string, opts gwOptions) (*gw, error) {
	t.Helper()
	if opts.route == "" {
		opts.route = "r"
	}
	if opts.shared == nil {
		opts.shared = pipeline.NewShared()
	}
	if opts.tel == nil {
		opts.tel = telemetry.New()
	}
	g := &gw{shared: opts.shared, tel: opts.tel}
	chain := []pipeline.Configured{authtest.Configure(t, Registration(), settings)}
	if opts.keyAuth {
		chain = append(chain, authtest.Configure(t, keyauth.Registration(), opts.keyAuthIn))
		gate := ""
		if opts.anonymous != "" {
			gate = "anonymous: " + opts.anonymous
		}
		chain = append(chain, authtest.Configure(t, authgate.Registration(), gate))
	}
	ureg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = ureg.Close() })
	svc, err := ureg.Service(config.Service{Name: "s", URL: originURL})
	if err != nil {
		t.Fatal(err)
	}
	px := proxy.New(proxy.Options{Service: svc, Timeouts: config.Timeouts{Connect: config.Duration(time.Second)}})
	consumers, err := consumer.New(opts.consumers)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.Chain(chain, pipeline.BuildEnv{Route: opts.route, Service: "s", Consumers: consumers,
		Shared: opts.shared, Store: opts.store, Telemetry: g.tel}, px)
	if err != nil {
		return nil, err
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"X-Consumer-Id", "X-Consumer-Name", "X-Consumer-Groups", "X-User-Id", "X-Anonymous-Consumer"} {
			delete(r.Header, name)
		}
		ex := &pipeline.Exchange{Start: time.Now(), Route: opts.route, Service: "s", RequestID: "req",
			UpstreamPath: r.URL.EscapedPath(), ClientIP: netip.MustParseAddr("127.0.0.1")}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}
	g.client = &http.Client{Transport: tr}
	g.url = edge.URL
	t.Cleanup(func() {
		// Retire the cache's shared objects (waits for background
		// refreshes) before the servers close.
		opts.shared.Begin()
		opts.shared.Retire()
		tr.CloseIdleConnections()
		edge.Close()
	})
	return g, nil
}

// result is what a client got.
type result struct {
	status int
	header http.Header
	body   string
}

func (r result) cacheStatus() string { return strings.Join(r.header.Values("Cache-Status"), ", ") }

// do sends method path with header fields kv.
func (g *gw) do(t *testing.T, method, path string, kv ...string) result {
	t.Helper()
	return g.send(t, method, path, nil, kv...)
}

// send sends method path with body (nil: none) and header fields kv.
func (g *gw) send(t *testing.T, method, path string, body io.Reader, kv ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "Host" {
			req.Host = kv[i+1]
			continue
		}
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (g *gw) get(t *testing.T, path string, kv ...string) result {
	t.Helper()
	return g.do(t, http.MethodGet, path, kv...)
}

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// pollUntil checks cond until it holds, and fails the test after
// waitTimeout. It is the one poll of these tests, for requests that join
// a fill in flight: joining changes only a counter, which signals nothing.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// await waits for a value on ch, and fails the test after waitTimeout.
func await[T any](t *testing.T, what string, ch <-chan T) {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	select {
	case <-ch:
	case <-timeout.C:
		t.Fatalf("timed out waiting for %s", what)
	}
}

// awaitRefreshes waits until the background refreshes in flight in g have
// ended (stored what they fetched, or given up).
func awaitRefreshes(t *testing.T, g *gw) {
	t.Helper()
	bg := pipeline.Get(g.shared, sharedBackground, newBackground)
	done := make(chan struct{})
	go func() {
		bg.wg.Wait()
		close(done)
	}()
	await(t, "the background refreshes to end", done)
}

func wantHits(t *testing.T, o *origin, want int64) {
	t.Helper()
	if got := o.hits.Load(); got != want {
		t.Errorf("got %d upstream requests, want %d", got, want)
	}
}

func wantStatus(t *testing.T, r result, sub string) {
	t.Helper()
	if !strings.Contains(r.cacheStatus(), sub) {
		t.Errorf("got Cache-Status %q, want it to contain %q", r.cacheStatus(), sub)
	}
}

package cors

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
	"github.com/portico-gateway/portico/internal/problem"
)

const app = "https://app.example.com"

func TestPreflightAllowedIsAnsweredByTheGateway(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"], allow_credentials: true, max_age: 5m, private_network: true}`)
	res := g.Do(t, http.MethodOptions, pathPlain, "",
		"Origin", app,
		"Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "content-type,X-Request-ID, authorization",
		"Access-Control-Request-Private-Network", "true")
	if res.Status != http.StatusNoContent {
		t.Fatalf("status: got %d, want 204 (body %q)", res.Status, res.Body)
	}
	if res.Body != "" {
		t.Errorf("body: got %q, want empty", res.Body)
	}
	checkHeader(t, res.Header, "Access-Control-Allow-Origin", app)
	checkHeader(t, res.Header, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	checkHeader(t, res.Header, "Access-Control-Allow-Headers",
		"Accept, Accept-Language, Content-Language, Content-Type, Authorization, X-Request-ID")
	checkHeader(t, res.Header, "Access-Control-Max-Age", "300")
	checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "true")
	checkHeader(t, res.Header, "Access-Control-Allow-Private-Network", "true")
	checkHeader(t, res.Header, "Access-Control-Expose-Headers", "")
	vary := varyTokens(res.Header)
	for _, want := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
		if !slices.Contains(vary, want) {
			t.Errorf("Vary: got %q, want it to hold %s", vary, want)
		}
	}
	if n := g.Upstream.Count(); n != 0 {
		t.Errorf("upstream hits: got %d, want 0", n)
	}
}

func TestPreflightWithoutCredentialsOrMaxAge(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["*"], allow_methods: [GET, POST], allow_headers: ["*"], max_age: 0s}`)
	res := g.preflight(t, "https://anyone.example.org", "POST", "x-anything, x-else")
	if res.Status != http.StatusNoContent {
		t.Fatalf("status: got %d, want 204 (body %q)", res.Status, res.Body)
	}
	checkHeader(t, res.Header, "Access-Control-Allow-Origin", "*")
	checkHeader(t, res.Header, "Access-Control-Allow-Methods", "GET, POST")
	checkHeader(t, res.Header, "Access-Control-Allow-Headers", "*")
	checkHeader(t, res.Header, "Access-Control-Max-Age", "")
	checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "")
	// private_network is off: the request for it gets no answer.
	res = g.Do(t, http.MethodOptions, pathPlain, "", "Origin", app, "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Private-Network", "true")
	checkHeader(t, res.Header, "Access-Control-Allow-Private-Network", "")
	if n := g.Upstream.Count(); n != 0 {
		t.Errorf("upstream hits: got %d, want 0", n)
	}
}

func TestPreflightRefused(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`", "https://*.example.net"], allow_methods: [GET, POST]}`)
	tests := []struct {
		name, origin, method, headers string
		wantDetail                    string
	}{
		{name: "origin", origin: "https://evil.example.org", method: "GET",
			wantDetail: `origin "https://evil.example.org" is not allowed`},
		{name: "evil suffix", origin: "https://evilexample.net", method: "GET",
			wantDetail: `origin "https://evilexample.net" is not allowed`},
		{name: "null origin", origin: "null", method: "GET", wantDetail: `origin "null" is not allowed`},
		{name: "method", origin: app, method: "DELETE",
			wantDetail: `method "DELETE" is not allowed; allowed methods: GET, POST`},
		{name: "method case", origin: app, method: "post", wantDetail: `method "post" is not allowed`},
		{name: "header", origin: app, method: "POST", headers: "content-type, x-secret",
			wantDetail: `request header "x-secret" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := g.preflight(t, tt.origin, tt.method, tt.headers)
			if res.Status != http.StatusForbidden {
				t.Fatalf("status: got %d, want 403", res.Status)
			}
			if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("Content-Type: got %q, want %q", ct, problem.ContentType)
			}
			var doc struct {
				Detail    string `json:"detail"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(res.Body), &doc); err != nil {
				t.Fatalf("body %q: %s", res.Body, err.Error())
			}
			if !strings.Contains(doc.Detail, tt.wantDetail) {
				t.Errorf("detail: got %q, want it to contain %q", doc.Detail, tt.wantDetail)
			}
			if doc.RequestID != "req-1" {
				t.Errorf("request_id: got %q, want req-1", doc.RequestID)
			}
			if names := accessControl(res.Header); len(names) != 0 {
				t.Errorf("got CORS headers %q, want none", names)
			}
		})
	}
	if n := g.Upstream.Count(); n != 0 {
		t.Errorf("upstream hits: got %d, want 0", n)
	}
}

func TestOptionsWithoutRequestMethodIsForwarded(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"]}`)
	for _, kv := range [][]string{{"Origin", app}, {"Access-Control-Request-Method", "GET"}} {
		res := g.Do(t, http.MethodOptions, pathPlain, "", kv...)
		if res.Status != http.StatusOK || res.Body != "upstream" {
			t.Errorf("%s: got %d %q, want 200 from the upstream", kv[0], res.Status, res.Body)
		}
	}
	if n := g.Upstream.Count(); n != 2 {
		t.Errorf("upstream hits: got %d, want 2", n)
	}
}

func TestActualRequest(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"], expose_headers: [X-Total, X-Page]}`)
	tests := []struct {
		name            string
		header          []string
		wantAllowOrigin string
		wantExpose      string
	}{
		{name: "allowed origin", header: []string{"Origin", app}, wantAllowOrigin: app, wantExpose: "X-Total, X-Page"},
		{name: "allowed origin, default port", header: []string{"Origin", app + ":443"},
			wantAllowOrigin: app + ":443", wantExpose: "X-Total, X-Page"},
		{name: "allowed origin, upper case", header: []string{"Origin", "HTTPS://App.Example.com"},
			wantAllowOrigin: "HTTPS://App.Example.com", wantExpose: "X-Total, X-Page"},
		{name: "disallowed origin", header: []string{"Origin", "https://evil.example.com"}},
		{name: "other scheme", header: []string{"Origin", "http://app.example.com"}},
		{name: "other port", header: []string{"Origin", app + ":8443"}},
		{name: "two origins", header: []string{"Origin", app, "Origin", app}},
		{name: "no origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.Upstream.Count()
			res := g.Do(t, http.MethodPost, pathPlain, "", tt.header...)
			if res.Status != http.StatusOK || res.Body != "upstream" {
				t.Fatalf("got %d %q, want 200 from the upstream", res.Status, res.Body)
			}
			if n := g.Upstream.Count() - before; n != 1 {
				t.Errorf("upstream hits: got %d, want 1", n)
			}
			if tt.wantAllowOrigin == "" {
				if names := accessControl(res.Header); len(names) != 0 {
					t.Errorf("got CORS headers %q, want none", names)
				}
			}
			checkHeader(t, res.Header, "Access-Control-Allow-Origin", tt.wantAllowOrigin)
			checkHeader(t, res.Header, "Access-Control-Expose-Headers", tt.wantExpose)
			checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "")
			if got := varyTokens(res.Header); !slices.Equal(got, []string{"Origin"}) {
				t.Errorf("Vary: got %q, want [Origin]", got)
			}
		})
	}
}

func TestWildcardSubdomain(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["https://*.example.com", "http://*.dev.example.org:8080"]}`)
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://a.example.com", true},
		{"https://a.b.example.com", true},
		{"https://A.EXAMPLE.COM", true},
		{"https://a.example.com:443", true},
		{"http://x.dev.example.org:8080", true},
		{"https://example.com", false},
		{"https://evilexample.com", false},
		{"https://a.example.com.evil.net", false},
		{"https://.example.com", false},
		{"http://a.example.com", false},
		{"https://a.example.com:8443", false},
		{"http://x.dev.example.org", false},
		{"https://a.example.com/", false},
		{"https://user@a.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			res := g.Do(t, http.MethodGet, pathPlain, "", "Origin", tt.origin)
			want := ""
			if tt.want {
				want = tt.origin
			}
			checkHeader(t, res.Header, "Access-Control-Allow-Origin", want)
			pre := g.preflight(t, tt.origin, "GET", "")
			if wantStatus := map[bool]int{true: 204, false: 403}[tt.want]; pre.Status != wantStatus {
				t.Errorf("preflight status: got %d, want %d", pre.Status, wantStatus)
			}
		})
	}
}

func TestCredentialsEchoTheOriginNeverStar(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`", "https://*.example.net"], allow_credentials: true}`)
	for _, origin := range []string{app, "https://x.example.net"} {
		for _, res := range []plugintest.Result{
			g.Do(t, http.MethodGet, pathUpstreamCO, "", "Origin", origin),
			g.preflight(t, origin, "GET", ""),
		} {
			checkHeader(t, res.Header, "Access-Control-Allow-Origin", origin)
			checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "true")
			if !slices.Contains(varyTokens(res.Header), "Origin") {
				t.Errorf("Vary: got %q, want Origin", varyTokens(res.Header))
			}
		}
	}
	// A refused origin gets no Allow-Credentials, even though the upstream sent one.
	res := g.Do(t, http.MethodGet, pathUpstreamCO, "", "Origin", "https://evil.example.org")
	if names := accessControl(res.Header); len(names) != 0 {
		t.Errorf("got CORS headers %q, want none", names)
	}
}

func TestStarWithoutCredentials(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["*"]}`)
	res := g.Do(t, http.MethodGet, pathPlain, "", "Origin", "https://anyone.example.org")
	checkHeader(t, res.Header, "Access-Control-Allow-Origin", "*")
	checkHeader(t, res.Header, "Vary", "")
	res = g.Do(t, http.MethodGet, pathPlain, "")
	if names := accessControl(res.Header); len(names) != 0 {
		t.Errorf("no Origin: got CORS headers %q, want none", names)
	}
	checkHeader(t, res.Header, "Vary", "")
}

func TestStarWithCredentialsIsRefused(t *testing.T) {
	t.Parallel()
	_, err := plugintest.TryConfigure(Registration(), `{allow_origins: ["*"], allow_credentials: true}`)
	if err == nil {
		t.Fatal("got no error, want one")
	}
	want := `routes[0].plugins.cors.allow_origins[0]: "*" cannot be combined with allow_credentials: true: browsers refuse a wildcard origin on credentialed requests; list the origins instead`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestUpstreamCORSHeadersAreReplaced(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"], expose_headers: [X-Total]}`)
	for _, path := range []string{pathUpstreamCO, pathError} {
		t.Run(path, func(t *testing.T) {
			res := g.Do(t, http.MethodGet, path, "", "Origin", app)
			checkHeader(t, res.Header, "Access-Control-Allow-Origin", app)
			checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "")
			checkHeader(t, res.Header, "Access-Control-Expose-Headers", "X-Total")
			checkHeader(t, res.Header, "Access-Control-Max-Age", "")
			if got := varyTokens(res.Header); !slices.Equal(got, []string{"Accept-Encoding", "Origin"}) {
				t.Errorf("Vary: got %q, want [Accept-Encoding Origin]", got)
			}
			for _, kv := range [][]string{{"Origin", "https://evil.example.org"}, nil} {
				res := g.Do(t, http.MethodGet, path, "", kv...)
				if names := accessControl(res.Header); len(names) != 0 {
					t.Errorf("origin %q: got CORS headers %q, want none", kv, names)
				}
				if got := varyTokens(res.Header); !slices.Equal(got, []string{"Accept-Encoding", "Origin"}) {
					t.Errorf("origin %q: Vary: got %q, want [Accept-Encoding Origin]", kv, got)
				}
			}
		})
	}
}

func TestCORSHeadersOnInnerAuthRefusal(t *testing.T) {
	t.Parallel()
	key := "app-key-0123456789abcdef"
	g := plugintest.Start(t, plugintest.Options{Consumers: []config.Consumer{
		{Name: "app", Credentials: config.Credentials{APIKeys: []config.Secret{config.Secret(key)}}},
	}},
		plugintest.Configure(t, keyauth.Registration(), ""),
		configure(t, `{allow_origins: ["`+app+`"], allow_credentials: true, expose_headers: [WWW-Authenticate]}`))

	res := g.Do(t, http.MethodGet, "/", "", "Origin", app)
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("status: got %d, want 401", res.Status)
	}
	if res.Upstream != nil {
		t.Error("the refused request reached the upstream")
	}
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("WWW-Authenticate: got none, want the challenge")
	}
	checkHeader(t, res.Header, "Access-Control-Allow-Origin", app)
	checkHeader(t, res.Header, "Access-Control-Allow-Credentials", "true")
	checkHeader(t, res.Header, "Access-Control-Expose-Headers", "WWW-Authenticate")
	if !slices.Contains(varyTokens(res.Header), "Origin") {
		t.Errorf("Vary: got %q, want Origin", varyTokens(res.Header))
	}

	// The preflight needs no key.
	res = g.Do(t, http.MethodOptions, "/", "", "Origin", app,
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if res.Status != http.StatusNoContent || res.Upstream != nil {
		t.Errorf("preflight: got %d (upstream reached: %t), want 204 answered by the gateway", res.Status, res.Upstream != nil)
	}

	// With the key the request passes and keeps its CORS headers.
	res = g.Do(t, http.MethodGet, "/", "", "Origin", app, "X-Api-Key", key)
	if res.Status != http.StatusOK || res.Upstream == nil {
		t.Fatalf("with key: got %d, want 200 from the upstream", res.Status)
	}
	checkHeader(t, res.Header, "Access-Control-Allow-Origin", app)
}

func TestNothingWrittenStillGetsHeaders(t *testing.T) {
	t.Parallel()
	h, err := pipeline.Chain([]pipeline.Configured{configure(t, `{allow_origins: ["`+app+`"]}`)},
		pipeline.BuildEnv{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", app)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkHeader(t, resp.Header, "Access-Control-Allow-Origin", app)
	checkHeader(t, resp.Header, "Vary", "Origin")
}

func TestStreamingPassesThrough(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"]}`)
	req, err := http.NewRequest(http.MethodGet, g.URL+pathStream, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", app)
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	checkHeader(t, resp.Header, "Access-Control-Allow-Origin", app)
	br := bufio.NewReader(resp.Body)
	// The upstream holds "b" back until released, so reading "a" proves
	// the flush went through the wrapper.
	b, err := br.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	if b != 'a' {
		t.Fatalf("first byte: got %q, want 'a'", b)
	}
	close(g.release)
	b, err = br.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	if b != 'b' {
		t.Fatalf("second byte: got %q, want 'b'", b)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	t.Parallel()
	g := startGateway(t, `{allow_origins: ["`+app+`"]}`)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(g.URL, "http")+pathWebSocket, http.Header{"Origin": {app}})
	if err != nil {
		t.Fatalf("dial: %s", err.Error())
	}
	defer c.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status: got %d, want 101", resp.StatusCode)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != "ping" {
		t.Fatalf("echo: got %q, want ping", msg)
	}
}

package transform

import (
	"net/http"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/jwt"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

const (
	jwtIssuer = "mobile-issuer"
	jwtSecret = "0123456789abcdef0123456789abcdef-test-secret"
	appKey    = "app-key-0123456789abcdef"
)

func authConsumers() []config.Consumer {
	return []config.Consumer{
		{Name: "mobile-app", ID: "app-7", Credentials: config.Credentials{
			JWT:     []config.JWTCredential{{Key: jwtIssuer, Algorithm: "HS256", Secret: jwtSecret}},
			APIKeys: []config.Secret{appKey},
		}},
	}
}

func signToken(t *testing.T, claims jwtlib.MapClaims) string {
	t.Helper()
	s, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTemplatesWithJWTAndConsumer: verified claims and the consumer found
// by a real jwt plugin reach the upstream through templates.
func TestTemplatesWithJWTAndConsumer(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up, Consumers: authConsumers()},
		plugintest.Configure(t, jwt.Registration(), "{algorithms: [HS256], consumer_credentials: true}"),
		reqPlugin(t, `
headers:
  set:
    X-Consumer: "$(consumer.name)/$(consumer.id)"
    X-Sub: "$(jwt.sub)"
    X-Roles: "$(claims.roles)"
    X-Level: "$(jwt.level)"
    X-Big: "$(jwt.big)"
    X-Ratio: "$(jwt.ratio)"
    X-Admin: "$(jwt.admin)"
    X-Org: "$(jwt.org.name)"
    X-Missing: "[$(jwt.nope)]"
    X-Object: "[$(jwt.org)]"
body:
  set: {owner: "$(jwt.sub)", tenant: "$(consumer.id)"}
`))
	now := time.Now()
	tok := signToken(t, jwtlib.MapClaims{"iss": jwtIssuer, "sub": "user-9", "exp": now.Add(time.Hour).Unix(),
		"roles": []string{"admin", "ops"}, "level": 3, "big": 1e21, "ratio": 0.25, "admin": true,
		"org": map[string]any{"name": "Acme"}})

	res := gw.Do(t, "POST", "/", `{"item":1}`, "Authorization", "Bearer "+tok, "Content-Type", "application/json")
	if res.Status != 200 {
		t.Fatalf("got status %d, want 200 (%s)", res.Status, res.Body)
	}
	got := up.Last()
	want := map[string]string{
		"X-Consumer": "mobile-app/app-7", "X-Sub": "user-9", "X-Roles": "admin,ops", "X-Level": "3",
		"X-Big": "1000000000000000000000", "X-Ratio": "0.25", "X-Admin": "true", "X-Org": "Acme",
		"X-Missing": "[]", "X-Object": "[]",
	}
	for k, w := range want {
		if g := got.Header.Get(k); g != w {
			t.Errorf("header %s: got %q, want %q", k, g, w)
		}
	}
	if wantBody := `{"item":1,"owner":"user-9","tenant":"app-7"}`; got.Body != wantBody {
		t.Errorf("got body %s, want %s", got.Body, wantBody)
	}

	// Without a valid token the gate refuses: nothing reaches the upstream.
	before := up.Count()
	if res := gw.Do(t, "GET", "/", ""); res.Status != http.StatusUnauthorized {
		t.Errorf("got status %d without a token, want 401", res.Status)
	}
	if up.Count() != before {
		t.Errorf("got a request upstream without a token")
	}
}

func TestTemplatesWithKeyAuthConsumer(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up, Consumers: authConsumers()},
		plugintest.Configure(t, keyauth.Registration(), ""),
		reqPlugin(t, `{query: {set: {client: "$(consumer.name)"}}, headers: {set: {X-Claim: "$(jwt.sub)"}}}`))
	gw.Do(t, "GET", "/?a=1", "", "X-API-Key", appKey)
	got := up.Last()
	if got.RawQuery != "a=1&client=mobile-app" {
		t.Errorf("got query %q, want a=1&client=mobile-app", got.RawQuery)
	}
	if v, ok := got.Header["X-Claim"]; ok {
		t.Errorf("got X-Claim %q without claims, want it absent", v)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		response bool
		src      string
		want     []string // substrings of the error
	}{
		{"unknown variable", false, `{headers: {set: {X-A: "id=$(consumer.idd)"}}}`, []string{
			"routes[0].plugins.request_transform.headers.set.X-A: unknown variable $(consumer.idd)",
			"did you mean $(consumer.id)?",
			"known variables: header.NAME, query.NAME, path.NAME, consumer.id, consumer.name, jwt.CLAIM, claims.CLAIM, client_ip, request_id, route, service, method, path"}},
		{"unknown variable in a query value", false, `{query: {add: {a: "$(nope)"}}}`, []string{"query.add.a: unknown variable $(nope)"}},
		{"unknown variable in a body value", false, `{body: {set: {a: {b: ["$(what)"]}}}}`, []string{"body.set.a.b[0]: unknown variable $(what)"}},
		{"unknown variable in the host", false, `{host: "$(hots)"}`, []string{"host: unknown variable $(hots)"}},
		{"response variable in a request", false, `{headers: {set: {X-T: "$(latency_ms)"}}}`, []string{"only known in response_transform"}},
		{"unknown response variable", true, `{headers: {set: {X-T: "$(latency)ms"}}}`, []string{
			"response_transform.headers.set.X-T: unknown variable $(latency)", "status, latency_ms"}},
		{"unterminated reference", false, `{headers: {add: {X-A: "$(consumer.id"}}}`, []string{"unterminated variable reference"}},
		{"empty header name", false, `{headers: {add: {X-A: "$(header.)"}}}`, []string{"needs a name after"}},
		{"bad header variable", false, `{headers: {add: {X-A: "$(header.a b)"}}}`, []string{"must name a header"}},
		{"protected header set", false, `{headers: {set: {host: x}}}`, []string{"header Host may not be changed"}},
		{"protected header removed", true, `{headers: {remove: [Content-Length, Proxy-Authorization, te]}}`, []string{
			"headers.remove[0]: header Content-Length", "headers.remove[1]: header Proxy-Authorization", "headers.remove[2]: header Te"}},
		{"protected rename target", false, `{headers: {rename: {X-A: Transfer-Encoding}}}`, []string{"header Transfer-Encoding may not"}},
		{"forwarding header", false, `{headers: {set: {X-Forwarded-For: 1.2.3.4}}}`, []string{"header X-Forwarded-For is written by the proxy"}},
		{"bad header name", false, `{headers: {set: {"X A": v}}}`, []string{`"X A" is not a header name`}},
		{"CR in a literal", false, "{headers: {set: {X-A: \"a\\r\\nb\"}}}", []string{"control characters"}},
		{"set and add the same header", false, `{headers: {set: {X-A: a}, add: {x-a: b}}}`, []string{"both set and added"}},
		{"bad regex", false, `{path: {pattern: "(", replacement: /x}}`, []string{"path.pattern: is not a valid RE2"}},
		{"relative replacement", false, `{path: {pattern: "^/a", replacement: "b"}}`, []string{`path.replacement: must start with "/"`}},
		{"missing capture", false, `{path: {pattern: "^/a/(.*)", replacement: "/$2"}}`, []string{"$2 refers to a capture"}},
		{"unknown named capture", false, `{path: {pattern: "^/a/(?P<x>.*)", replacement: "/$${y}"}}`, []string{"${y} names no capture"}},
		{"host with a path", false, `{host: "a/b"}`, []string{"host: must be a host name"}},
		{"on_invalid", false, `{body: {on_invalid: drop}}`, []string{"body.on_invalid: must be pass or reject"}},
		{"empty path segment", false, `{body: {remove: ["a..b"]}}`, []string{`body.remove[0]: path "a..b" has an empty segment`}},
		{"rename to a path", true, `{body: {rename: {a.b: c.d}}}`, []string{"one non-empty segment"}},
		{"allow and deny", true, `{body: {allow: [a], deny: [b]}}`, []string{"body: set allow or deny, not both"}},
		{"status key", true, `{status: {"99": 200, "abc": 200}}`, []string{"status.99: keys must be", "status.abc: keys must be"}},
		{"status value", true, `{status: {"500": 700}}`, []string{"status.500: must be a status between 200 and 599"}},
		{"max_size zero", true, `{body: {max_size: 0}}`, []string{"body.max_size: must be between"}},
		{"NaN body value", false, `{body: {set: {a: .nan}}}`, []string{"body.set.a: is not a finite number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := RequestRegistration()
			if tt.response {
				reg = ResponseRegistration()
			}
			_, err := plugintest.TryConfigure(reg, tt.src)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error\n%s\nwant it to contain %q", err.Error(), w)
				}
			}
		})
	}
}

func TestBuildRefusesUnknownVariable(t *testing.T) {
	t.Parallel()
	s := RequestRegistration().Spec().(*RequestSpec)
	s.Headers.Set = map[string]string{"X-A": "$(consumer.tier)"}
	_, err := buildRequest(s, &pipeline.BuildEnv{})
	if err == nil {
		t.Fatal("got no error, want the unknown variable refused")
	}
	if !strings.Contains(err.Error(), "unknown variable $(consumer.tier)") || !strings.Contains(err.Error(), "known variables:") {
		t.Errorf("got %s, want the unknown variable named with the known ones", err.Error())
	}
}

func TestParseAndRender(t *testing.T) {
	t.Parallel()
	r, _ := http.NewRequest("PUT", "http://x/a?b=c%26d&b=2&e", nil)
	r.Header.Set("X-In", "v\r\nx")
	ex := &pipeline.Exchange{RequestID: "id", UpstreamPath: "/up", Params: []pipeline.Param{{Name: "p", Value: "1"}},
		Consumer: &consumer.Consumer{Name: "n", ID: "i"},
		Claims:   map[string]any{"s": "str", "n": 1.5e300, "arr": []any{"a", 2.0, false}, "nested": map[string]any{"k": "v"}}}
	in := &input{r: r, ex: ex, status: 503, latency: 1500 * time.Microsecond}
	tests := []struct {
		tmpl, want string
		header     bool
	}{
		{"plain", "plain", true},
		{"", "", true},
		{"$$(x) $ $$ $x", "$(x) $ $$ $x", true},
		{"$(query.b)|$(query.e)|$(query.none)", "c&d||", false},
		{"$(header.x-in)", "vx", true},
		{"$(header.x-in)", "v\r\nx", false},
		{"$(path.p)$(path.q)$(path)$(method)", "1/upPUT", true},
		{"$(consumer.name):$(consumer.id)", "n:i", true},
		{"$(jwt.s) $(claims.arr) $(jwt.nested.k)", "str a,2,false v", true},
		{"$(status) $(latency_ms)ms", "503 1ms", true},
	}
	for _, tt := range tests {
		tm, err := parseTemplate(tt.tmpl, true)
		if err != nil {
			t.Errorf("%q: got error %s", tt.tmpl, err.Error())
			continue
		}
		if got := tm.render(in, tt.header); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.tmpl, got, tt.want)
		}
	}
	big, _ := parseTemplate("$(jwt.n)", false)
	if got := big.render(in, true); strings.ContainsAny(got, "e+") || len(got) != 301 {
		t.Errorf("got %q, want 1.5e300 written out without exponent", got)
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "a$(route)b", "$$(x", "$(", "$(header.X-A)", "$(jwt.a.b)$$", "$)(", "$($("} {
		f.Add(s)
	}
	r, _ := http.NewRequest("GET", "http://x/?a=1", nil)
	in := &input{r: r, ex: &pipeline.Exchange{}}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTemplate(s, true)
		if err != nil {
			return
		}
		out := tm.render(in, true)
		if !clean(out) && clean(s) {
			t.Errorf("render of %q produced control characters: %q", s, out)
		}
		if !strings.Contains(s, "$(") && out != s {
			t.Errorf("template without references %q rendered as %q", s, out)
		}
	})
}

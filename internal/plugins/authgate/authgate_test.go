package authgate_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/basicauth"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"golang.org/x/crypto/bcrypt"
)

const appKey = "app-key-0123456789abcdef"

var bobHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("bob-pw"), 10)
	if err != nil {
		panic(err)
	}
	return string(h)
})

func consumers() []config.Consumer {
	return []config.Consumer{
		{Name: "app", Groups: []string{"ops"}, Credentials: config.Credentials{
			APIKeys:   []config.Secret{appKey},
			BasicAuth: []config.BasicCredential{{Username: "bob", PasswordHash: config.Secret(bobHash())}},
		}},
		{Name: "guest", ID: "anon-1"},
	}
}

func h(kv ...string) http.Header {
	out := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

func basic(user, pass string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// TestTwoAuthPlugins puts key_auth and basic_auth on one route.
func TestTwoAuthPlugins(t *testing.T) {
	t.Parallel()
	start := func(gate string) *authtest.Gateway {
		return authtest.Start(t, authtest.Options{Consumers: consumers()},
			authtest.Configure(t, keyauth.Registration(), ""),
			authtest.Configure(t, basicauth.Registration(), ""),
			authtest.Configure(t, authgate.Registration(), gate))
	}
	anyGW, allGW, anonGW := start(""), start("{mode: all}"), start("{mode: all, anonymous: guest}")
	goodBasic, badBasic := basic("bob", "bob-pw"), basic("bob", "wrong")
	tests := []struct {
		name          string
		gw            *authtest.Gateway
		header        http.Header
		want          int
		wantDetail    string
		wantChallenge string
		wantID        string
	}{
		{"any: key only", anyGW, h("X-API-Key", appKey), 200, "", "", "app"},
		{"any: basic only", anyGW, h("Authorization", goodBasic), 200, "", "", "app"},
		{"any: both", anyGW, h("X-API-Key", appKey, "Authorization", goodBasic), 200, "", "", "app"},
		{"any: good key, bad password", anyGW, h("X-API-Key", appKey, "Authorization", badBasic), 200, "", "", "app"},
		{"any: nothing reports the first missing", anyGW, nil, 401, "no API key found in request", keyauth.Challenge, ""},
		{"any: the presented failure wins", anyGW, h("Authorization", badBasic), 401, "invalid username or password", basicauth.Challenge, ""},
		{"any: a presented key's failure wins", anyGW, h("X-API-Key", "nope-nope-nope-nope"), 401, "invalid API key", keyauth.Challenge, ""},
		{"all: both", allGW, h("X-API-Key", appKey, "Authorization", goodBasic), 200, "", "", "app"},
		{"all: key only", allGW, h("X-API-Key", appKey), 401, "no basic credentials found in request", basicauth.Challenge, ""},
		{"all: basic only", allGW, h("Authorization", goodBasic), 401, "no API key found in request", keyauth.Challenge, ""},
		{"all: good key, bad password", allGW, h("X-API-Key", appKey, "Authorization", badBasic), 401, "invalid username or password", basicauth.Challenge, ""},
		{"all: anonymous when one fails", anonGW, h("X-API-Key", appKey), 200, "", "", "anon-1"},
		{"all: anonymous still admits both", anonGW, h("X-API-Key", appKey, "Authorization", goodBasic), 200, "", "", "app"},
	}
	for _, tt := range tests {
		if tt.header == nil {
			tt.header = http.Header{}
		}
		tt.header.Set("X-Consumer-ID", "forged")
		tt.header.Set("X-User-ID", "forged")
		tt.header.Set("X-Anonymous-Consumer", "forged")
		res := tt.gw.Do(t, "/", tt.header)
		if res.Status != tt.want {
			t.Errorf("%s: got %d, want %d (%s)", tt.name, res.Status, tt.want, res.Body)
			continue
		}
		if tt.want != 200 {
			if res.Upstream != nil {
				t.Errorf("%s: got a request upstream, want none", tt.name)
			}
			if !strings.Contains(res.Body, `"detail":"`+tt.wantDetail+`"`) || !strings.Contains(res.Body, `"request_id":"req-1"`) {
				t.Errorf("%s: got %s, want detail %q", tt.name, res.Body, tt.wantDetail)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("%s: got WWW-Authenticate %q, want %q", tt.name, got, tt.wantChallenge)
			}
			continue
		}
		up := res.Upstream.Header
		if got := up.Values("X-Consumer-ID"); len(got) != 1 || got[0] != tt.wantID {
			t.Errorf("%s: got X-Consumer-ID %q, want %q", tt.name, got, tt.wantID)
		}
		if got := up.Values("X-User-ID"); len(got) != 0 {
			t.Errorf("%s: got X-User-ID %q, want none", tt.name, got)
		}
		wantAnon := []string(nil)
		if tt.wantID == "anon-1" {
			wantAnon = []string{"true"}
		}
		if got := up.Values("X-Anonymous-Consumer"); !slices.Equal(got, wantAnon) {
			t.Errorf("%s: got X-Anonymous-Consumer %q, want %q", tt.name, got, wantAnon)
		}
	}
}

// fixed is an authentication plugin for tests that records a fixed result.
func fixed(name string, pass *consumer.Consumer, subject string, fail pipeline.AuthFailure) pipeline.Configured {
	reg := pipeline.Registration{
		Name:  name,
		Phase: pipeline.PhaseAuthenticate,
		Spec:  func() pipeline.Spec { return &authgate.Spec{} },
		Build: func(pipeline.Spec, *pipeline.BuildEnv) (pipeline.Middleware, error) {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ex := pipeline.FromContext(r.Context())
					if pass != nil || subject != "" {
						ex.AuthPassed(pass, name+":x")
						ex.Subject = subject
					} else {
						ex.AuthFailed(fail)
					}
					next.ServeHTTP(w, r)
				})
			}, nil
		},
	}
	return pipeline.Configured{Reg: &reg, Spec: &authgate.Spec{}}
}

func TestFailuresAndIdentity(t *testing.T) {
	t.Parallel()
	app := &consumer.Consumer{Name: "app", ID: "app-1", Groups: []string{"a", "b"}, GroupsHeader: "a, b"}
	tests := []struct {
		name     string
		plugins  []pipeline.Configured
		want     int
		wantHdrs map[string]string // response headers, or upstream headers on 200
	}{
		{"503 with Retry-After", []pipeline.Configured{fixed("idp", nil, "", pipeline.AuthFailure{Status: 503, RetryAfter: "5", Detail: "identity provider unavailable", Presented: true})},
			503, map[string]string{"Retry-After": "5", "WWW-Authenticate": ""}},
		{"403 insufficient scope", []pipeline.Configured{fixed("jwtish", nil, "", pipeline.AuthFailure{Status: 403, Challenge: `Bearer error="insufficient_scope", scope="write"`, Detail: "insufficient scope", Presented: true})},
			403, map[string]string{"WWW-Authenticate": `Bearer error="insufficient_scope", scope="write"`}},
		{"subject becomes X-User-ID", []pipeline.Configured{fixed("jwtish", app, "user-7", pipeline.AuthFailure{})},
			200, map[string]string{"X-Consumer-Id": "app-1", "X-Consumer-Name": "app", "X-Consumer-Groups": "a, b", "X-User-Id": "user-7", "X-Anonymous-Consumer": ""}},
		{"subject without a consumer still becomes X-User-ID", []pipeline.Configured{fixed("jwtish", nil, "alice", pipeline.AuthFailure{})},
			200, map[string]string{"X-User-Id": "alice", "X-Consumer-Id": "", "X-Consumer-Name": ""}},
		{"custom header names", []pipeline.Configured{fixed("jwtish", app, "user-7", pipeline.AuthFailure{}),
			authtest.Configure(t, authgate.Registration(), "{headers: {consumer_id: X-Caller, user_id: X-Sub}}")},
			200, map[string]string{"X-Caller": "app-1", "X-Sub": "user-7", "X-Consumer-Id": "", "X-User-Id": ""}},
	}
	for _, tt := range tests {
		gw := authtest.Start(t, authtest.Options{Consumers: consumers()}, tt.plugins...)
		res := gw.Do(t, "/", h("X-Caller", "forged", "X-Sub", "forged", "X-Consumer-Name", "forged"))
		if res.Status != tt.want {
			t.Errorf("%s: got %d, want %d (%s)", tt.name, res.Status, tt.want, res.Body)
			continue
		}
		got := res.Header
		if tt.want == 200 {
			got = res.Upstream.Header
		}
		for k, want := range tt.wantHdrs {
			if vs := got.Values(k); want == "" && len(vs) != 0 || want != "" && (len(vs) != 1 || vs[0] != want) {
				t.Errorf("%s: got %s %q, want %q", tt.name, k, vs, want)
			}
		}
	}
}

func TestNoAuthPluginPassesThrough(t *testing.T) {
	t.Parallel()
	gw := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, authgate.Registration(), "{anonymous: guest}"))
	res := gw.Do(t, "/", h("X-Consumer-ID", "forged", "X-Other", "kept"))
	if res.Status != 200 {
		t.Fatalf("got %d, want 200", res.Status)
	}
	if got := res.Upstream.Header.Get("X-Consumer-ID"); got != "" {
		t.Errorf("got X-Consumer-ID %q upstream, want none (stripped, not set)", got)
	}
	if got := res.Upstream.Header.Get("X-Other"); got != "kept" {
		t.Errorf("got X-Other %q, want kept", got)
	}
}

func TestUnknownAnonymousFailsTheBuild(t *testing.T) {
	t.Parallel()
	_, err := authtest.Build(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, keyauth.Registration(), ""),
		authtest.Configure(t, authgate.Registration(), "{anonymous: nobody}"))
	want := `routes[0].plugins.auth: anonymous: unknown consumer "nobody"; it must be listed in consumers`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	reg := authgate.Registration()
	got := reg.IdentityHeaders(reg.Spec())
	want := []string{"X-Consumer-ID", "X-Consumer-Name", "X-Consumer-Groups", "X-User-ID", "X-Anonymous-Consumer"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	c := authtest.Configure(t, reg, "{headers: {anonymous: X-Anon}}")
	if got := reg.IdentityHeaders(c.Spec); got[4] != "X-Anon" {
		t.Errorf("got %q, want X-Anon last", got)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"{mode: all}", ""},
		{"{mode: some}", `routes[0].plugins.auth.mode: must be "any" or "all"`},
		{"{headers: {user_id: 'X User'}}", "routes[0].plugins.auth.headers.user_id: must be a header name like X-Consumer-ID"},
		{"{headers: {user_id: ''}}", "routes[0].plugins.auth.headers.user_id: must be a header name"},
		{"{headers: {user_id: x-consumer-id}}", "routes[0].plugins.auth.headers.user_id: header x-consumer-id is already used for headers.consumer_id"},
	}
	for _, tt := range tests {
		_, err := authtest.TryConfigure(authgate.Registration(), tt.src)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: got %s, want no error", tt.src, err.Error())
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}

// verdict is an authentication plugin for tests that records what record
// does to the Exchange.
func verdict(name string, record func(ex *pipeline.Exchange)) pipeline.Configured {
	reg := pipeline.Registration{
		Name:  name,
		Phase: pipeline.PhaseAuthenticate,
		Spec:  func() pipeline.Spec { return &authgate.Spec{} },
		Build: func(pipeline.Spec, *pipeline.BuildEnv) (pipeline.Middleware, error) {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					record(pipeline.FromContext(r.Context()))
					next.ServeHTTP(w, r)
				})
			}, nil
		},
		IdentityHeaders: func(pipeline.Spec) []string { return []string{"X-Roles"} },
	}
	return pipeline.Configured{Reg: &reg, Spec: &authgate.Spec{}}
}

// TestUncheckedAndPluginHeaders covers the verdicts forward_auth needs: an
// unchecked verdict (fail open) admits for the mode but authenticates
// nobody, and headers a passing plugin learned reach the upstream only
// when the request is admitted as authenticated.
func TestUncheckedAndPluginHeaders(t *testing.T) {
	t.Parallel()
	app := &consumer.Consumer{Name: "app", ID: "app-1"}
	roles := http.Header{"X-Roles": {"admin"}}
	passWithRoles := verdict("fwd", func(ex *pipeline.Exchange) { ex.AuthPassedWith(nil, "fwd:1", roles) })
	unchecked := verdict("fwd", func(ex *pipeline.Exchange) { ex.AuthUnchecked() })
	passApp := fixed("keyish", app, "", pipeline.AuthFailure{})
	failKey := fixed("keyish", nil, "", pipeline.AuthFailure{Status: 401, Detail: "no key"})
	tests := []struct {
		name      string
		plugins   []pipeline.Configured
		want      int
		wantID    string // X-Consumer-ID upstream
		wantRoles string // X-Roles upstream
		wantAnon  bool
	}{
		{"pass with headers", []pipeline.Configured{passWithRoles}, 200, "", "admin", false},
		{"any: pass with headers and a key", []pipeline.Configured{passWithRoles, passApp}, 200, "app-1", "admin", false},
		{"all: headers dropped when anonymous", []pipeline.Configured{passWithRoles, failKey,
			authtest.Configure(t, authgate.Registration(), "{mode: all, anonymous: guest}")}, 200, "anon-1", "", true},
		{"all: refused without anonymous", []pipeline.Configured{passWithRoles, failKey,
			authtest.Configure(t, authgate.Registration(), "{mode: all}")}, 401, "", "", false},
		{"unchecked alone: no identity", []pipeline.Configured{unchecked}, 200, "", "", false},
		{"unchecked alone: anonymous", []pipeline.Configured{unchecked,
			authtest.Configure(t, authgate.Registration(), "{anonymous: guest}")}, 200, "anon-1", "", true},
		{"any: unchecked beside a failed key", []pipeline.Configured{unchecked, failKey}, 200, "", "", false},
		{"any: unchecked beside a good key", []pipeline.Configured{unchecked, passApp}, 200, "app-1", "", false},
		{"all: unchecked and a good key", []pipeline.Configured{unchecked, passApp,
			authtest.Configure(t, authgate.Registration(), "{mode: all}")}, 200, "app-1", "", false},
		{"all: unchecked and a failed key", []pipeline.Configured{unchecked, failKey,
			authtest.Configure(t, authgate.Registration(), "{mode: all}")}, 401, "", "", false},
	}
	for _, tt := range tests {
		gw := authtest.Start(t, authtest.Options{Consumers: consumers()}, tt.plugins...)
		res := gw.Do(t, "/", h("X-Roles", "forged", "X-Consumer-ID", "forged"))
		if res.Status != tt.want {
			t.Errorf("%s: got %d, want %d (%s)", tt.name, res.Status, tt.want, res.Body)
			continue
		}
		if tt.want != 200 {
			if res.Upstream != nil {
				t.Errorf("%s: got a request upstream, want none", tt.name)
			}
			continue
		}
		up := res.Upstream.Header
		if got := up.Get("X-Consumer-ID"); got != tt.wantID {
			t.Errorf("%s: got X-Consumer-ID %q, want %q", tt.name, got, tt.wantID)
		}
		if got := up.Values("X-Roles"); strings.Join(got, ",") != tt.wantRoles {
			t.Errorf("%s: got X-Roles %q, want %q", tt.name, got, tt.wantRoles)
		}
		if got := up.Get("X-Anonymous-Consumer") == "true"; got != tt.wantAnon {
			t.Errorf("%s: got anonymous %v, want %v", tt.name, got, tt.wantAnon)
		}
	}
}

// TestRenderedRefusal: a failure that carries a response is written as it
// is (status, headers, body), not as problem JSON; HEAD gets no body.
func TestRenderedRefusal(t *testing.T) {
	t.Parallel()
	resp := &pipeline.Response{Status: http.StatusFound,
		Header: http.Header{"Location": {"https://login.example/?rd=x"}, "Set-Cookie": {"csrf=1"}, "Content-Type": {"text/html"}},
		Body:   []byte("<a>login</a>")}
	gw := authtest.Start(t, authtest.Options{Consumers: consumers()},
		fixed("fwd", nil, "", pipeline.AuthFailure{Status: http.StatusFound, Response: resp, Detail: "unused"}))
	gw.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res := gw.Do(t, "/", nil)
	if res.Status != http.StatusFound || res.Body != "<a>login</a>" {
		t.Fatalf("got %d %q, want 302 with the rendered body", res.Status, res.Body)
	}
	for k, want := range map[string]string{"Location": "https://login.example/?rd=x", "Set-Cookie": "csrf=1",
		"Content-Type": "text/html", "Content-Length": "12"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("got %s %q, want %q", k, got, want)
		}
	}
	if res.Upstream != nil {
		t.Errorf("got a request upstream, want none")
	}
	head := gw.Send(t, gw.NewRequest(t, http.MethodHead, "/", nil, nil))
	if head.Status != http.StatusFound || head.Body != "" || head.Header.Get("Location") == "" {
		t.Errorf("HEAD: got %d %q Location %q, want 302, no body, the Location", head.Status, head.Body, head.Header.Get("Location"))
	}
}

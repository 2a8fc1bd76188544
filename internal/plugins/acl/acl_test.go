package acl_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/plugins/acl"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
)

const (
	adminKey = "admin-key-0123456789"
	userKey  = "user-key-0123456789x"
	plainKey = "plain-key-0123456789"
)

func consumers() []config.Consumer {
	return []config.Consumer{
		{Name: "admin", Groups: []string{"admins", "staff"}, Credentials: config.Credentials{APIKeys: []config.Secret{adminKey}}},
		{Name: "user", Groups: []string{"users"}, Credentials: config.Credentials{APIKeys: []config.Secret{userKey}}},
		{Name: "plain", Credentials: config.Credentials{APIKeys: []config.Secret{plainKey}}},
		{Name: "guest"},
		{Name: "guest-staff", Groups: []string{"staff"}},
	}
}

func key(k string) http.Header { return http.Header{"X-Api-Key": {k}} }

func TestACL(t *testing.T) {
	t.Parallel()
	start := func(aclSpec, gateSpec string) *authtest.Gateway {
		return authtest.Start(t, authtest.Options{Consumers: consumers()},
			authtest.Configure(t, keyauth.Registration(), ""),
			authtest.Configure(t, authgate.Registration(), gateSpec),
			authtest.Configure(t, acl.Registration(), aclSpec))
	}
	allow := start("{allow: [admins, staff]}", "")
	deny := start("{deny: [users]}", "")
	anonAllow := start("{allow: [staff]}", "{anonymous: guest}")
	anonStaff := start("{allow: [staff]}", "{anonymous: guest-staff}")
	anonDeny := start("{deny: [users]}", "{anonymous: guest}")
	// acl alone, with no authentication: no consumer means 401.
	alone := authtest.Start(t, authtest.Options{Consumers: consumers()},
		authtest.Configure(t, acl.Registration(), "{allow: [admins]}"))

	tests := []struct {
		name   string
		gw     *authtest.Gateway
		header http.Header
		want   int
	}{
		{"allow: in group", allow, key(adminKey), 200},
		{"allow: not in group", allow, key(userKey), 403},
		{"allow: no groups", allow, key(plainKey), 403},
		{"allow: no key is refused by the gate", allow, nil, 401},
		{"deny: in group", deny, key(userKey), 403},
		{"deny: not in group", deny, key(adminKey), 200},
		{"deny: no groups", deny, key(plainKey), 200},
		{"anonymous without groups is not allowed", anonAllow, nil, 403},
		{"anonymous with configured groups is allowed", anonStaff, nil, 200},
		{"anonymous is not denied", anonDeny, nil, 200},
		{"anonymous route, denied consumer", anonDeny, key(userKey), 403},
		{"no consumer", alone, nil, 401},
		{"forged groups do not help", alone, http.Header{"X-Consumer-Groups": {"admins"}}, 401},
	}
	for _, tt := range tests {
		res := tt.gw.Do(t, "/", tt.header)
		if res.Status != tt.want {
			t.Errorf("%s: got %d, want %d (%s)", tt.name, res.Status, tt.want, res.Body)
			continue
		}
		if (res.Upstream != nil) != (tt.want == 200) {
			t.Errorf("%s: got upstream reached %v, want %v", tt.name, res.Upstream != nil, tt.want == 200)
		}
		if tt.want == 403 && !strings.Contains(res.Body, `"detail":"consumer is not allowed on this route"`) {
			t.Errorf("%s: got body %s, want the acl detail", tt.name, res.Body)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"{allow: [a]}", ""},
		{"{deny: [a, b]}", ""},
		{"", "routes[0].plugins.acl: set allow or deny: a list of consumer groups"},
		{"{allow: [], deny: []}", "routes[0].plugins.acl: set allow or deny"},
		{"{allow: [a], deny: [b]}", "routes[0].plugins.acl.deny: cannot be combined with allow; use one of them"},
		{"{allow: [a, '']}", "routes[0].plugins.acl.allow[1]: group must not be empty"},
	}
	for _, tt := range tests {
		_, err := authtest.TryConfigure(acl.Registration(), tt.src)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: got %s, want no error", tt.src, err.Error())
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}

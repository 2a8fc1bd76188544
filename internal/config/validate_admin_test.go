package config

import (
	"strings"
	"testing"
)

const (
	adminTokenA = "adm-a-0123456789abcdefghijklmnopqrstuv" // 38 characters
	adminTokenB = "adm-b-0123456789abcdefghijklmnopqrstuv"
)

// TestValidateAdmin changes the admin block of a valid config and checks
// the exact errors.
func TestValidateAdmin(t *testing.T) {
	t.Parallel()
	const open = `is not a loopback address, and without admin.tokens anyone who reaches it can reload the config and purge the cache: set admin.tokens (docs/operations.md#admin-api), listen on 127.0.0.1, or set admin.insecure: true`
	write := func(name string, token Secret) AdminToken { return AdminToken{Name: name, Token: token, Role: "write"} }
	tests := []struct {
		name   string
		change func(a *Admin)
		want   []string
	}{
		{"digest and literal", func(a *Admin) {
			a.Tokens = []AdminToken{write("ops", Secret(digestOf(adminTokenA))), {Name: "grafana", Token: adminTokenB, Role: "read"}}
		}, nil},
		{"literal of 32 with padding", func(a *Admin) {
			a.Tokens = []AdminToken{write("ops", Secret("Ab0-._~+/"+strings.Repeat("x", 21)+"=="))}
		}, nil},
		{"literal too short", func(a *Admin) { a.Tokens = []AdminToken{write("ops", Secret(strings.Repeat("x", 31)))} },
			[]string{`admin.tokens[0].token: a literal token must be at least 32 characters; better, write its digest: sha256: followed by 64 hex digits; make one with: printf %s "$TOKEN" | sha256sum`}},
		{"literal with a space", func(a *Admin) { a.Tokens = []AdminToken{write("ops", Secret(adminTokenA+" x"))} },
			[]string{`admin.tokens[0].token: a literal token may hold only letters, digits, "-", ".", "_", "~", "+" and "/", then "=" padding (RFC 6750)`}},
		{"padding in the middle", func(a *Admin) { a.Tokens = []AdminToken{write("ops", Secret("a=b"+adminTokenA))} },
			[]string{`admin.tokens[0].token: a literal token may hold only letters, digits, "-", ".", "_", "~", "+" and "/", then "=" padding (RFC 6750)`}},
		{"short digest", func(a *Admin) { a.Tokens = []AdminToken{write("ops", "sha256:abcd")} },
			[]string{`admin.tokens[0].token: a token digest must be sha256: followed by exactly 64 hex digits; make one with: printf %s "$TOKEN" | sha256sum`}},
		{"digest not hex", func(a *Admin) { a.Tokens = []AdminToken{write("ops", Secret("sha256:"+strings.Repeat("g", 64)))} },
			[]string{`admin.tokens[0].token: a token digest must be sha256: followed by exactly 64 hex digits; make one with: printf %s "$TOKEN" | sha256sum`}},
		{"token missing", func(a *Admin) { a.Tokens = []AdminToken{{Name: "ops", Role: "read"}} },
			[]string{`admin.tokens[0].token: is required: sha256: followed by the 64 hex digits of the token's SHA-256; make one with: printf %s "$TOKEN" | sha256sum`}},
		{"same token as literal and digest", func(a *Admin) {
			a.Tokens = []AdminToken{write("a", adminTokenA), write("b", Secret(digestOf(adminTokenA)))}
		}, []string{"admin.tokens[1].token: the same token as admin.tokens[0]; give every token its own value"}},
		{"name and role", func(a *Admin) {
			a.Tokens = []AdminToken{{Token: adminTokenA}, {Name: "x y", Token: adminTokenB, Role: "admin"}}
		}, []string{
			"admin.tokens[0].name: is required",
			`admin.tokens[0].role: is required: "read" (GET endpoints) or "write" (every endpoint)`,
			`admin.tokens[1].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
			`admin.tokens[1].role: must be "read" (GET endpoints) or "write" (every endpoint)`,
		}},
		{"duplicate name", func(a *Admin) { a.Tokens = []AdminToken{write("ops", adminTokenA), write("ops", adminTokenB)} },
			[]string{`admin.tokens[1].name: duplicate token name "ops"; admin.tokens[0] has it too`}},
		{"public paths", func(a *Admin) { a.PublicPaths = []string{"/metrics", "health", "/a?b", "/metrics"} },
			[]string{
				`admin.public_paths[1]: must be an admin path starting with "/", like "/metrics"`,
				`admin.public_paths[2]: must be a plain path, without a query, fragment or spaces`,
				`admin.public_paths[3]: duplicate public path "/metrics"`,
			}},
		{"no public paths", func(a *Admin) { a.PublicPaths = []string{} }, nil},
		{"origins", func(a *Admin) {
			a.AllowedOrigins = []string{"https://ops.example.com", "http://127.0.0.1:3000", "https://[::1]:8443",
				"https://ops.example.com/", "null", "*", "ftp://x", "https://u@x", "https://x/a", "https://x?", "https://x:"}
		}, []string{
			`admin.allowed_origins[3]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[4]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[5]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[6]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[7]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[8]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[9]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
			`admin.allowed_origins[10]: must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`,
		}},
		{"loopback v4", func(a *Admin) { a.Listen = "127.0.0.1:9901" }, nil},
		{"loopback v4 other", func(a *Admin) { a.Listen = "127.1.2.3:9901" }, nil},
		{"loopback v6", func(a *Admin) { a.Listen = "[::1]:9901" }, nil},
		{"loopback mapped", func(a *Admin) { a.Listen = "[::ffff:127.0.0.1]:9901" }, nil},
		{"localhost", func(a *Admin) { a.Listen = "LocalHost:9901" }, nil},
		{"off", func(a *Admin) { a.Listen = "off" }, nil},
		{"all interfaces", func(a *Admin) { a.Listen = ":9901" }, []string{`admin.listen: ":9901" ` + open}},
		{"unspecified v4", func(a *Admin) { a.Listen = "0.0.0.0:9901" }, []string{`admin.listen: "0.0.0.0:9901" ` + open}},
		{"unspecified v6", func(a *Admin) { a.Listen = "[::]:9901" }, []string{`admin.listen: "[::]:9901" ` + open}},
		{"private address", func(a *Admin) { a.Listen = "10.0.0.5:9901" }, []string{`admin.listen: "10.0.0.5:9901" ` + open}},
		{"host name", func(a *Admin) { a.Listen = "admin.internal:9901" }, []string{`admin.listen: "admin.internal:9901" ` + open}},
		{"insecure", func(a *Admin) { a.Listen, a.Insecure = "0.0.0.0:9901", true }, nil},
		{"with tokens", func(a *Admin) {
			a.Listen, a.Tokens = "0.0.0.0:9901", []AdminToken{write("ops", Secret(digestOf(adminTokenA)))}
		}, nil},
		{"invalid tokens still count as set", func(a *Admin) {
			a.Listen, a.Tokens = "0.0.0.0:9901", []AdminToken{write("ops", "short")}
		}, []string{`admin.tokens[0].token: a literal token must be at least 32 characters; better, write its digest: sha256: followed by 64 hex digits; make one with: printf %s "$TOKEN" | sha256sum`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.change(&c.Admin)
			var got []string
			if err := c.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestValidateAdminNeverEchoesTokens: no message carries a token, literal or
// digest, whatever is wrong with it.
func TestValidateAdminNeverEchoesTokens(t *testing.T) {
	t.Parallel()
	secrets := []string{adminTokenA, "tooshort-secret", "sha256:abcdef0123", "bad token with spaces 0123456789abcdef"}
	c := validConfig()
	c.Admin.Tokens = []AdminToken{
		{Name: "a", Token: adminTokenA, Role: "write"},
		{Name: "b", Token: adminTokenA, Role: "read"},
		{Name: "c", Token: "tooshort-secret", Role: "read"},
		{Name: "d", Token: "sha256:abcdef0123", Role: "read"},
		{Name: "e", Token: "bad token with spaces 0123456789abcdef", Role: "read"},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("got nil error, want several")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 4 {
		t.Errorf("got %d errors, want 4:\n%s", n, err)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("got an error containing the token %q:\n%s", s, err)
		}
	}
}

func TestAdminTokenDigest(t *testing.T) {
	t.Parallel()
	want := digestOf(adminTokenA)
	for _, tok := range []Secret{adminTokenA, Secret(want)} {
		d, ok := AdminToken{Token: tok}.Digest()
		if !ok || "sha256:"+hexString(d[:]) != want {
			t.Errorf("Digest of a %d-character token: got %x %v, want %s", len(tok), d, ok, want)
		}
	}
	if _, ok := (AdminToken{Token: "sha256:00"}).Digest(); ok {
		t.Error("Digest of a short digest: got ok, want not ok")
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

func TestAdminOrigins(t *testing.T) {
	t.Parallel()
	a := Admin{AllowedOrigins: []string{"HTTPS://Ops.Example.com:443", "http://x:80", "http://x:8080", "https://[::1]:443", "bad"}}
	got := strings.Join(a.Origins(), " ")
	want := "https://ops.example.com http://x http://x:8080 https://[::1]"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestParseAdmin: public_paths defaults to the probes when absent and
// stays empty when written empty; a token may come from the environment
// and is then never echoed.
func TestParseAdmin(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) {
		switch k {
		case "ADMIN_TOKEN":
			return adminTokenA, true
		case "SHORT_TOKEN":
			return "env-short", true
		}
		return "", false
	}
	const svc = "services: [{name: a, url: \"http://127.0.0.1:1\"}]\n"
	c, err := Parse([]byte(svc+"admin:\n  tokens: [{name: ops, token: \"${ADMIN_TOKEN}\", role: write}]\n"), "a.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Admin.PublicPaths, " "); got != "/health /ready" {
		t.Errorf("public_paths absent: got %q, want the probes", got)
	}
	if c.Admin.Tokens[0].Token.Value() != adminTokenA {
		t.Errorf("token from the environment: not expanded")
	}
	c, err = Parse([]byte(svc+"admin: {public_paths: []}\n"), "a.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.PublicPaths == nil || len(c.Admin.PublicPaths) != 0 {
		t.Errorf("public_paths: []: got %q, want an empty list", c.Admin.PublicPaths)
	}
	_, err = Parse([]byte(svc+"admin:\n  tokens: [{name: ops, token: \"${SHORT_TOKEN}\", role: read}]\n"), "a.yaml", env)
	if err == nil || !strings.Contains(err.Error(), "a.yaml:3:24: admin.tokens[0].token: a literal token must be at least 32") ||
		strings.Contains(err.Error(), "env-short") {
		t.Errorf("short token from the environment: got %v, want a located error without the token", err)
	}
}

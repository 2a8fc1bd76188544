package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	adminRead  = "e2e-read-0123456789abcdefghijklmnopqrstuvwxyz"
	adminWrite = "e2e-write-0123456789abcdefghijklmnopqrstuvwxyz"
	adminOther = "e2e-other-0123456789abcdefghijklmnopqrstuvwxyz"
)

func sha256Digest(tok string) string {
	d := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(d[:])
}

// adminAuthConfig returns a config with a read token (a literal) and a
// write token (a digest), route /a, and route /b when withB is set.
func adminAuthConfig(a *upstream, withB bool, adminExtra string) string {
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
  tokens:
    - {name: grafana, token: %q, role: read}
    - {name: ops, token: %q, role: write}
%sservices:
  - {name: a, url: %q}
routes:
  - {name: a, match: {paths: ["/a"]}, service: a}
`, adminRead, sha256Digest(adminWrite), adminExtra, a.URL())
	if withB {
		cfg += "  - {name: b, match: {paths: [\"/b\"]}, service: a}\n"
	}
	return cfg
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// checkAdminProblem asserts an admin API problem answer with status.
func checkAdminProblem(t *testing.T, what string, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: got %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type got %q, want application/problem+json", what, ct)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["status"] != float64(status) {
		t.Errorf("%s: body %s, want a problem document with status %d", what, body, status)
	}
}

// TestAdminTokens drives the admin API of a gateway with tokens: no token
// and a bad token get 401, a read token reads but cannot reload or purge,
// a write token reloads; the probes stay open; refusals are logged
// without the token.
func TestAdminTokens(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "a", nil)
	g := startGateway(t, adminAuthConfig(up, false, ""))
	c := newClient(t)

	resp, body := get(t, c, g.AdminURL("/routes"))
	checkAdminProblem(t, "GET /routes without a token", resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); ch != `Bearer realm="portico-admin"` {
		t.Errorf("WWW-Authenticate: got %q, want Bearer realm=\"portico-admin\"", ch)
	}
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, bearer(adminOther)...)
	checkAdminProblem(t, "POST /reload with a bad token", resp, body, http.StatusUnauthorized)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="portico-admin"`) {
		t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", ch)
	}

	for _, p := range []string{"/routes", "/upstreams", "/metrics", "/version"} {
		if resp, body := get(t, c, g.AdminURL(p), bearer(adminRead)...); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the read token: got %d %s, want 200", p, resp.StatusCode, body)
		}
	}
	for _, p := range []string{"/health", "/ready"} {
		if resp, body := get(t, c, g.AdminURL(p)); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: got %d %s, want 200 (public)", p, resp.StatusCode, body)
		}
	}

	g.writeConfig(adminAuthConfig(up, true, ""))
	before := g.logCount("config reloaded")
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, bearer(adminRead)...)
	checkAdminProblem(t, "POST /reload with the read token", resp, body, http.StatusForbidden)
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/cache/purge"), strings.NewReader(`{"route":"a"}`),
		append(bearer(adminRead), "Content-Type", "application/json")...)
	checkAdminProblem(t, "POST /cache/purge with the read token", resp, body, http.StatusForbidden)
	// The file watcher may reload the new file by itself; what matters is
	// that the refused POST did not.
	if n := g.logCount("config reloaded"); n != before {
		if resp, _ := get(t, c, g.URL("/b")); resp.StatusCode != http.StatusOK {
			t.Fatalf("a reload was logged but /b is not served")
		}
	}

	resp, body = do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, bearer(adminWrite)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /reload with the write token: got %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := get(t, c, g.URL("/b")); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /b after the reload: got %d %s, want 200", resp.StatusCode, body)
	}
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/cache/purge"), strings.NewReader(`{"route":"a"}`),
		append(bearer(adminWrite), "Content-Type", "application/json")...)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /cache/purge with the write token: got %d %s, want 200", resp.StatusCode, body)
	}

	reasons := map[string]bool{}
	wrote := false
	for _, l := range g.stderr.JSONLines() {
		switch l["msg"] {
		case "admin request refused":
			if l["level"] != "WARN" || l["remote"] == nil || l["path"] == nil {
				t.Errorf("refusal log line: got %v, want WARN with remote and path", l)
			}
			reasons[fmt.Sprint(l["reason"])] = true
		case "admin write":
			wrote = wrote || l["token"] == "ops"
		}
	}
	for _, r := range []string{"missing token", "invalid token", "insufficient role"} {
		if !reasons[r] {
			t.Errorf("no refusal logged with reason %q; got %v", r, reasons)
		}
	}
	if !wrote {
		t.Error(`no "admin write" line naming the token "ops"`)
	}
	out := g.stdout.String() + g.stderr.String()
	for _, secret := range []string{adminRead, adminWrite, adminOther} {
		if strings.Contains(out, secret) {
			t.Errorf("the process output contains a token")
		}
	}
	if g.logCount("the admin API is open: admin.tokens is empty, so every process and user on this host can call it, POST /reload included; set admin.tokens to require a token") != 0 {
		t.Error("a gateway with tokens warned that its admin API is open")
	}
}

// TestAdminTokensChangeOnReload: a reload replaces the tokens and the
// public paths; the token that asked for the reload stops working.
func TestAdminTokensChangeOnReload(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "a", nil)
	g := startGateway(t, adminAuthConfig(up, false, ""))
	c := newClient(t)
	next := strings.Replace(adminAuthConfig(up, false, "  public_paths: [/metrics]\n"), sha256Digest(adminWrite), sha256Digest(adminOther), 1)
	g.writeConfig(next)
	if resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, bearer(adminWrite)...); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /reload: got %d %s, want 200", resp.StatusCode, body)
	}
	checks := []struct {
		method, path, tok string
		want              int
	}{
		{http.MethodPost, "/reload", adminWrite, http.StatusUnauthorized},
		{http.MethodPost, "/reload", adminOther, http.StatusOK},
		{http.MethodGet, "/metrics", "", http.StatusOK},
		{http.MethodGet, "/health", "", http.StatusUnauthorized},
		{http.MethodGet, "/routes", adminRead, http.StatusOK},
	}
	for _, ck := range checks {
		var hdr []string
		if ck.tok != "" {
			hdr = bearer(ck.tok)
		}
		if resp, body := do(t, c, ck.method, g.AdminURL(ck.path), nil, hdr...); resp.StatusCode != ck.want {
			t.Errorf("after the reload, %s %s: got %d %s, want %d", ck.method, ck.path, resp.StatusCode, body, ck.want)
		}
	}
}

// TestAdminBlocksRepeatedFailures: ten failed attempts from one address
// block it with 429 and Retry-After, even for the write token, while the
// public probes still answer.
func TestAdminBlocksRepeatedFailures(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "a", nil)
	g := startGateway(t, adminAuthConfig(up, false, ""))
	c := newClient(t)
	for i := range 10 {
		if resp, body := get(t, c, g.AdminURL("/routes"), bearer(adminOther)...); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d %s, want 401", i+1, resp.StatusCode, body)
		}
	}
	resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, bearer(adminWrite)...)
	checkAdminProblem(t, "POST /reload with the write token after 10 failures", resp, body, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After: got %q, want the seconds left", ra)
	}
	if resp, _ := get(t, c, g.AdminURL("/health")); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health while blocked: got %d, want 200", resp.StatusCode)
	}
	if g.logCount("admin client blocked after repeated authentication failures") != 1 {
		t.Errorf("no log line for the block; stderr:\n%s", tail(g.stderr.String(), 3000))
	}
}

// TestAdminOpenOnLoopback: without tokens the admin API on loopback is
// open, as before tokens existed, and says so at start; its write
// endpoints still refuse what a browser can send cross-site.
func TestAdminOpenOnLoopback(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "a", nil)
	g := startGateway(t, base+fmt.Sprintf("services: [{name: a, url: %q}]\nroutes: [{name: a, match: {paths: [\"/a\"]}, service: a}]\n", up.URL()))
	c := newClient(t)
	if g.logCount("the admin API is open: admin.tokens is empty, so every process and user on this host can call it, POST /reload included; set admin.tokens to require a token") != 1 {
		t.Errorf("no warning that the admin API is open; stderr:\n%s", tail(g.stderr.String(), 3000))
	}
	if resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("POST /reload without a token: got %d %s, want 200", resp.StatusCode, body)
	}
	resp, body := do(t, c, http.MethodPost, g.AdminURL("/reload"), nil, "Origin", "https://evil.example")
	checkAdminProblem(t, "POST /reload from another origin", resp, body, http.StatusForbidden)
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/cache/purge"), strings.NewReader(`{"route":"a"}`), "Content-Type", "text/plain")
	checkAdminProblem(t, "POST /cache/purge as text/plain", resp, body, http.StatusUnsupportedMediaType)
	resp, body = do(t, c, http.MethodPost, g.AdminURL("/cache/purge"), strings.NewReader(`{"route":"a"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /cache/purge as JSON: got %d %s, want 200", resp.StatusCode, body)
	}
}

// runBriefly runs portico with args and returns its exit code and output;
// it fails the test if the process is still running after 10 seconds
// (it should have refused to start).
func runBriefly(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PORTICO_CONFIG=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("portico %v still running after 10s, want it to refuse to start; output:\n%s", args, out)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("run portico %v: %s", args, err)
	return -1, ""
}

// TestAdminNonLoopbackNeedsTokens: an admin listener on every interface
// without tokens is refused by run and validate, with a located error
// that says what to do; admin.insecure lets it start, with a warning.
func TestAdminNonLoopbackNeedsTokens(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "a", nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	routes := fmt.Sprintf("services: [{name: a, url: %q}]\nroutes: [{name: a, match: {paths: [\"/a\"]}, service: a}]\n", up.URL())
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:0\nadmin: {listen: \"0.0.0.0:0\"}\n"+routes), 0o600); err != nil {
		t.Fatal(err)
	}
	lineRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(file) +
		`:2:9: admin\.listen: "0\.0\.0\.0:0" is not a loopback address, and without admin\.tokens .* set admin\.tokens .*admin\.insecure: true$`)
	for _, cmd := range []string{"run", "validate"} {
		code, out := runBriefly(t, cmd, "-c", file)
		if code != 1 {
			t.Errorf("portico %s: exit code %d, want 1; output:\n%s", cmd, code, out)
		}
		if !lineRE.MatchString(out) {
			t.Errorf("portico %s: output\n%s\nwant a line matching %s", cmd, out, lineRE)
		}
		if strings.Contains(out, "portico started") {
			t.Errorf("portico %s started", cmd)
		}
	}

	// With tokens it starts; so it does with insecure: true, warning.
	g := startGateway(t, fmt.Sprintf("listen: 127.0.0.1:0\nadmin:\n  listen: \"0.0.0.0:0\"\n  tokens: [{name: ops, token: %q, role: write}]\n", sha256Digest(adminWrite))+routes)
	_, port, _ := net.SplitHostPort(g.admin)
	c := newClient(t)
	if resp, _ := get(t, c, "http://127.0.0.1:"+port+"/routes"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("non-loopback admin with tokens, no token: got %d, want 401", resp.StatusCode)
	}
	g = startGateway(t, "listen: 127.0.0.1:0\nadmin: {listen: \"0.0.0.0:0\", insecure: true}\n"+routes)
	if g.logCount("the admin API is open on a non-loopback address (admin.insecure): anyone who can reach it can call it, POST /reload included; set admin.tokens to require a token") != 1 {
		t.Errorf("no warning about the insecure admin API; stderr:\n%s", tail(g.stderr.String(), 3000))
	}
	_, port, _ = net.SplitHostPort(g.admin)
	if resp, body := get(t, c, "http://127.0.0.1:"+port+"/routes"); resp.StatusCode != http.StatusOK {
		t.Errorf("insecure admin, GET /routes: got %d %s, want 200", resp.StatusCode, body)
	}
}

// TestDemoAdminLoopbackOnly: the demo's admin API has no tokens, so the
// demo refuses a non-loopback --admin and says why.
func TestDemoAdminLoopbackOnly(t *testing.T) {
	t.Parallel()
	code, out := runBriefly(t, "demo", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0", "--control", "off")
	if code != 2 || !strings.Contains(out, "--admin 0.0.0.0:0: the demo's admin API has no tokens, so it listens on loopback only") {
		t.Errorf("got exit %d, output:\n%s\nwant 2 and the loopback message", code, out)
	}
}

package e2e

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDemoCORSAndCompression follows the tour's CORS and compression
// steps: the preflight from http://localhost:3000 is answered by the
// gateway, and the order list comes gzip-encoded and decodes to JSON.
func TestDemoCORSAndCompression(t *testing.T) {
	t.Parallel()
	g := startProcess(t, t.TempDir(), "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--control", "off")
	c := newClient(t)

	resp, _ := do(t, c, "OPTIONS", g.URL("/api/orders"), nil,
		"Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: got %d %v, want 204 allowing http://localhost:3000 with credentials", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, c, "OPTIONS", g.URL("/api/orders"), nil,
		"Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: got %d %v, want 403 without CORS headers", resp.StatusCode, resp.Header)
	}

	resp, body := do(t, c, "POST", g.URL("/api/auth/login"),
		strings.NewReader(`{"username":"alice","password":"alice-password"}`), "Content-Type", "application/json")
	var login struct{ Token string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &login) != nil || login.Token == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, g.URL("/api/orders"), "Authorization", "Bearer "+login.Token,
		"Accept-Encoding", "gzip", "Origin", "http://localhost:3000")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("order list: got %d, Content-Encoding %q; want 200 gzip", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Fatalf("actual request: Access-Control-Allow-Origin %q", got)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("gzip: %s", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !json.Valid(plain) || len(plain) <= len(body) {
		t.Fatalf("decoded %d bytes (valid JSON %t) from %d: %v", len(plain), json.Valid(plain), len(body), err)
	}
}

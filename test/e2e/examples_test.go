package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesValidate runs `portico validate` on every config in examples/,
// bench/ and test/conformance/, so a shipped example can never drift from
// the schema.
func TestExamplesValidate(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pattern := range []string{"examples/*.yaml", "bench/*.yaml", "test/conformance/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("got %d example configs, want the shipped set", len(files))
	}
	env := append(os.Environ(),
		"PORTICO_DEMO_AUTH_URL=http://127.0.0.1:3000",
		"PORTICO_DEMO_ORDERS_URL=http://127.0.0.1:3001",
		"PORTICO_DEMO_ORDERS_2_URL=http://127.0.0.1:3011",
		"PORTICO_DEMO_PAYMENT_URL=http://127.0.0.1:3002",
		"PORTICO_DEMO_PRODUCTS_URL=http://127.0.0.1:3004",
		"BENCH_LISTEN=127.0.0.1:0",
		"BENCH_UPSTREAM=http://127.0.0.1:3003",
		"BENCH_API_KEY=bench-key",
		"BENCH_TMP="+t.TempDir(),
		"CONFORMANCE_LISTEN=127.0.0.1:0",
		"CONFORMANCE_UPSTREAM=http://127.0.0.1:3005",
		"CONFORMANCE_UPSTREAM_URL=http://127.0.0.1:3006",
		// validate reads no certificate file: the paths need not exist.
		"CONFORMANCE_CERT_FILE=/nonexistent/cert.pem",
		"CONFORMANCE_KEY_FILE=/nonexistent/key.pem",
	)
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binPath, "validate", "-c", f)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Errorf("got %v:\n%s\nwant ok", err, out)
			}
		})
	}
}

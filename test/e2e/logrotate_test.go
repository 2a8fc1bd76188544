package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLogReopenOnSIGUSR1 is logrotate's "move, then signal" dance:
// after the file is renamed and SIGUSR1 sent, new lines go to a new file at
// the configured path and no line is lost.
func TestAccessLogReopenOnSIGUSR1(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	logFile := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/"]}, service: api}
plugins:
  access_log: {output: %q}
`, up.srv.URL, logFile))
	c := newClient(t)
	hit := func(id string) {
		req, _ := http.NewRequest("GET", g.URL("/x"), nil)
		req.Header.Set("X-Request-ID", id)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	contains := func(file, id string) bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), `"request_id":"`+id+`"`)
	}
	hit("before-rotate")
	// The access log is flushed at least every second.
	eventually(t, 5*time.Second, func() error {
		if !contains(logFile, "before-rotate") {
			return fmt.Errorf("the first line never reached the log file")
		}
		return nil
	})
	rotated := logFile + ".1"
	if err := os.Rename(logFile, rotated); err != nil {
		t.Fatal(err)
	}
	g.Signal(syscall.SIGUSR1)
	eventually(t, 5*time.Second, func() error {
		if g.logCount("log files reopened") != 1 {
			return fmt.Errorf("no \"log files reopened\" line after SIGUSR1")
		}
		return nil
	})
	hit("after-rotate")
	eventually(t, 5*time.Second, func() error {
		if !contains(logFile, "after-rotate") {
			return fmt.Errorf("after SIGUSR1, new lines did not reach a new file at the configured path")
		}
		return nil
	})
	if !contains(rotated, "before-rotate") || contains(rotated, "after-rotate") {
		t.Error("got lines in the wrong file: the rotated file must keep only the old lines")
	}
}

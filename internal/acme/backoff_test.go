package acme

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// down is an ACME server that answers every request with 503, without
// a socket, so the test's clock is synctest's.
type down struct {
	mu   sync.Mutex
	hits []time.Time
}

func (d *down) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	d.hits = append(d.hits, time.Now())
	d.mu.Unlock()
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader("down")), Request: r}, nil
}

// recorder keeps the records of a logger.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// TestManagerBacksOffOnFailingServer runs a manager against an ACME
// server that is down: each order fails after two quick retries of the
// client, and the next order comes 1, 2, 4, then 8 minutes later, each
// failure logged with its wait.
func TestManagerBacksOffOnFailingServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &down{}
		rec := &recorder{}
		m, err := New(Options{Settings: &config.ACME{Domains: []string{"a.test"}, Directory: "https://ca.test/dir",
			Challenges: []string{config.ChallengeTLSALPN01}, RenewBefore: config.DefaultACMERenewBefore},
			Storage: NewDir(t.TempDir()), Logger: slog.New(rec)})
		if err != nil {
			t.Fatal(err)
		}
		m.acmeHC = &http.Client{Transport: srv}
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()

		time.Sleep(8 * time.Minute)
		synctest.Wait()
		cancel()
		<-done

		rec.mu.Lock()
		defer rec.mu.Unlock()
		var at []time.Duration
		var waits []string
		for _, r := range rec.recs {
			if r.Message != "acme order failed" {
				continue
			}
			at = append(at, r.Time.Sub(start).Truncate(time.Second))
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "retry_in" {
					waits = append(waits, a.Value.String())
				}
				return true
			})
		}
		// Each failed order spends 3s in the client's two retries (1s, 2s).
		wantAt := []time.Duration{3 * time.Second, 66 * time.Second, 189 * time.Second, 432 * time.Second}
		wantWaits := []string{"1m0s", "2m0s", "4m0s", "8m0s"}
		if len(at) != len(wantAt) || strings.Join(waits, ",") != strings.Join(wantWaits, ",") {
			t.Fatalf("failures at %v with waits %v, want at %v with waits %v", at, waits, wantAt, wantWaits)
		}
		for i := range at {
			if at[i] != wantAt[i] {
				t.Errorf("failure %d at %s, want %s", i+1, at[i], wantAt[i])
			}
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.hits) != 12 {
			t.Errorf("requests to the server: got %d, want 12 (4 orders of 3 tries)", len(srv.hits))
		}
	})
}

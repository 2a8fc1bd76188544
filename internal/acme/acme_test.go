package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/redisclient"
	"github.com/portico-gateway/portico/internal/redistest"
)

// storages returns a directory storage and a Redis storage, for tests
// that hold for both.
func storages(t *testing.T) map[string]Storage {
	rd := redistest.Start(t)
	c, err := redisclient.New(&config.Redis{URL: config.Secret(rd.URL())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return map[string]Storage{"dir": NewDir(t.TempDir()), "redis": NewRedis(c, "test:acme:")}
}

// TestStorageLock: one holder at a time; a released lock can be taken
// again; an expired lock is taken over; release by a former holder does
// not free the new holder's lock.
func TestStorageLock(t *testing.T) {
	t.Parallel()
	for name, s := range storages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			release, err := s.TryLock(ctx, "ns/locks/a.test", time.Minute)
			if err != nil {
				t.Fatalf("first lock: %s", err)
			}
			if _, err := s.TryLock(ctx, "ns/locks/a.test", time.Minute); !errors.Is(err, errLocked) {
				t.Fatalf("second lock: got %v, want errLocked", err)
			}
			release()
			release2, err := s.TryLock(ctx, "ns/locks/a.test", 50*time.Millisecond)
			if err != nil {
				t.Fatalf("lock after release: %s", err)
			}
			// Past its ttl the lock is free for another holder; the old
			// holder's late release leaves the new lock alone.
			deadline := time.Now().Add(5 * time.Second)
			var release3 func()
			for release3 == nil {
				if release3, err = s.TryLock(ctx, "ns/locks/a.test", time.Minute); err != nil && !errors.Is(err, errLocked) {
					t.Fatal(err)
				}
				if time.Now().After(deadline) {
					t.Fatal("expired lock never taken over")
				}
				time.Sleep(10 * time.Millisecond) // the lock's own expiry is what the test waits for
			}
			release2()
			if _, err := s.TryLock(ctx, "ns/locks/a.test", time.Minute); !errors.Is(err, errLocked) {
				t.Errorf("after the expired holder released: got %v, want the new holder's lock kept", err)
			}
			release3()
		})
	}
}

func TestStorageGetPutDelete(t *testing.T) {
	t.Parallel()
	for name, s := range storages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := s.Get(ctx, "ns/certs/a.test.pem"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("missing key: got %v, want fs.ErrNotExist", err)
			}
			if err := s.Put(ctx, "ns/certs/a.test.pem", []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
			if b, err := s.Get(ctx, "ns/certs/a.test.pem"); err != nil || string(b) != "x" {
				t.Fatalf("got %q, %v; want x", b, err)
			}
			if err := s.Delete(ctx, "ns/certs/a.test.pem"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "ns/certs/a.test.pem"); err != nil {
				t.Errorf("deleting a missing key: %s", err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		want time.Duration
	}{{0, time.Minute}, {1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {9, 256 * time.Minute}, {10, 6 * time.Hour}, {1000, 6 * time.Hour}}
	for _, tt := range tests {
		if got := Backoff(tt.n); got != tt.want {
			t.Errorf("Backoff(%d): got %s, want %s", tt.n, got, tt.want)
		}
	}
}

// TestRenewAt: renew_before the expiry, or at half the lifetime for
// short-lived certificates.
func TestRenewAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manager{set: config.ACME{RenewBefore: config.DefaultACMERenewBefore}}
	tests := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"90 days", 90 * 24 * time.Hour, 60 * 24 * time.Hour},
		{"6 days", 6 * 24 * time.Hour, 3 * 24 * time.Hour},
	}
	for _, tt := range tests {
		leaf := &x509.Certificate{NotBefore: now, NotAfter: now.Add(tt.lifetime)}
		if got := m.renewAt(leaf).Sub(now); got != tt.want {
			t.Errorf("%s: renew after %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	if got := Namespace(config.DefaultACMEDirectory); got != "acme-v02.api.letsencrypt.org_directory" {
		t.Errorf("got %q", got)
	}
	if got := Namespace("https://127.0.0.1:14000/dir"); got != "127.0.0.1_14000_dir" {
		t.Errorf("got %q", got)
	}
}

// TestHTTP01AnswersSharedTokens: a token stored by another instance is
// answered; unknown tokens and tokens that are not base64url are left
// to the router.
func TestHTTP01AnswersSharedTokens(t *testing.T) {
	t.Parallel()
	store := NewDir(t.TempDir())
	m, err := New(Options{Settings: &config.ACME{Domains: []string{"a.test"}, Directory: "https://ca.test/dir"}, Storage: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), m.http01Key("tok_en-1"), []byte("tok_en-1.thumb"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var c Challenges
	c.Set([]*Manager{m})
	for _, tt := range []struct {
		path string
		want bool
	}{{ChallengePath + "tok_en-1", true}, {ChallengePath + "other", false}, {ChallengePath + "..%2f..%2fx", false}, {"/x", false}} {
		w := httptest.NewRecorder()
		got := c.ServeHTTP01(w, httptest.NewRequest("GET", tt.path, nil))
		if got != tt.want || (got && w.Body.String() != "tok_en-1.thumb") {
			t.Errorf("%s: answered %v %q, want %v", tt.path, got, w.Body.String(), tt.want)
		}
	}
	if _, err := c.TLSALPN01("a.test"); err == nil {
		t.Errorf("TLS-ALPN-01 without a pending challenge: got a certificate")
	}
}

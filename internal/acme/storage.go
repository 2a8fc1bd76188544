package acme

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Storage keeps the ACME state that outlives a process and that gateway
// instances share: account keys, certificates with their keys, the
// answers to pending challenges, and the locks that let one instance
// order a certificate while the others wait for it.
type Storage interface {
	// Get returns the value of key, or an error wrapping fs.ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets key to data; a ttl above 0 lets it expire.
	Put(ctx context.Context, key string, data []byte, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// TryLock takes the lock named key for ttl, or returns errLocked
	// while another holder has it. release gives it back (a lock that is
	// not released expires after ttl).
	TryLock(ctx context.Context, key string, ttl time.Duration) (release func(), err error)
}

// errLocked is returned by TryLock while another holder has the lock.
var errLocked = errors.New("acme: lock held by another instance")

// DefaultDir returns the storage directory used when tls.acme.storage.dir
// is not set: $XDG_STATE_HOME/portico/acme, else /var/lib/portico/acme for
// root, else ~/.local/state/portico/acme.
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "portico", "acme")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/portico/acme"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "portico", "acme")
	}
	return filepath.Join(os.TempDir(), "portico-acme")
}

// Dir is a Storage in a directory: one file per key (mode 0600, in
// directories of mode 0700), written atomically by renaming; a lock is a
// file created exclusively that holds its expiry. Processes on one host
// (or sharing the directory over a file system with atomic create and
// rename) share it safely.
type Dir struct{ root string }

// NewDir returns the storage in dir, created when first written.
func NewDir(dir string) *Dir { return &Dir{root: dir} }

func (d *Dir) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

// Get reads key's file.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(d.path(key))
	if err != nil {
		return nil, fmt.Errorf("acme storage: %w", err)
	}
	return b, nil
}

// Put writes key's file atomically; ttl is not kept (the manager deletes
// what it no longer needs).
func (d *Dir) Put(_ context.Context, key string, data []byte, _ time.Duration) error {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("acme storage: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("acme storage: %w", err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("acme storage: write %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("acme storage: %w", err)
	}
	return nil
}

// Delete removes key's file.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("acme storage: %w", err)
	}
	return nil
}

// TryLock creates key's lock file exclusively; a lock file whose expiry
// has passed is taken over.
func (d *Dir) TryLock(_ context.Context, key string, ttl time.Duration) (func(), error) {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("acme storage: %w", err)
	}
	id := lockID()
	content := []byte(strconv.FormatInt(time.Now().Add(ttl).UnixNano(), 10) + " " + id)
	for range 2 {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.Write(content)
			if err := errors.Join(werr, f.Close()); err != nil {
				_ = os.Remove(p)
				return nil, fmt.Errorf("acme storage: lock %s: %w", key, err)
			}
			return func() {
				if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, content) {
					_ = os.Remove(p)
				}
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("acme storage: lock %s: %w", key, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // released meanwhile: try again
		}
		exp, _, _ := bytes.Cut(b, []byte(" "))
		if n, err := strconv.ParseInt(string(exp), 10, 64); err == nil && time.Now().UnixNano() < n {
			return nil, errLocked
		}
		_ = os.Remove(p) // expired (or unreadable): its holder is gone
	}
	return nil, errLocked
}

// lockID is a random value that identifies one holder of a lock.
func lockID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

package gateway

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// The watcher reloads when the config file or a file it names (a TLS
// certificate or key, a client CA or CRL) changes. It watches the files' directories, so
// editors that replace a file (write a temporary file, rename it over) and
// Kubernetes ConfigMap and Secret symlink swaps ("..data") are seen too.
// Bursts of events are coalesced: one reload 200 ms after the last event.
// After every reload the set of watched files follows the new config.

// watched is the set of files a reload depends on, by directory.
type watched struct {
	mu    sync.Mutex
	files map[string]map[string]bool // dir → base names
}

func (w *watched) set(files []string) (dirs []string) {
	m := make(map[string]map[string]bool)
	for _, f := range files {
		dir, base := filepath.Split(absPath(f))
		dir = filepath.Clean(dir)
		if m[dir] == nil {
			m[dir] = make(map[string]bool)
			dirs = append(dirs, dir)
		}
		m[dir][base] = true
	}
	w.mu.Lock()
	w.files = m
	w.mu.Unlock()
	return dirs
}

func (w *watched) has(path string) bool {
	dir, base := filepath.Split(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	names := w.files[filepath.Clean(dir)]
	return names[base] || names != nil && base == "..data"
}

// watchedFiles returns the config file and the certificate, key, client
// CA and CRL files of the current config.
func (s *Server) watchedFiles() []string {
	files := []string{s.opts.WatchFile}
	for _, l := range s.current.Load().cfg.PublicListeners() {
		if l.TLS == nil {
			continue
		}
		for _, f := range l.TLS.Files() {
			files = append(files, f.CertFile, f.KeyFile)
		}
		if l.TLS.ClientAuth != nil {
			files = append(files, l.TLS.ClientAuth.Files()...)
		}
	}
	return files
}

// newWatcher sets the watch up before the server reports that it started,
// so no change made after that is missed; watch then runs the loop.
func (s *Server) newWatcher() (*fsnotify.Watcher, *watched) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("config file watching unavailable; reload with SIGHUP", "error", err)
		return nil, nil
	}
	set := &watched{}
	for _, dir := range set.set(s.watchedFiles()) {
		if err := w.Add(dir); err != nil {
			s.log.Warn("file watching unavailable for a directory; reload with SIGHUP", "dir", dir, "error", err)
		}
	}
	return w, set
}

func absPath(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		return abs
	}
	return file
}

// watch reloads when a watched file changes, until ctx ends. After each
// reload (whatever triggered it), reloaded tells it to follow the new
// config's files.
func (s *Server) watch(ctx context.Context, w *fsnotify.Watcher, set *watched, reloaded <-chan struct{}) {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if set.has(absPath(ev.Name)) {
				timer.Reset(200 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("config file watch error", "error", err)
		case <-timer.C:
			s.log.Info("a watched file changed; reloading", "file", s.opts.WatchFile)
			s.requestReload()
		case <-reloaded:
			for _, dir := range set.set(s.watchedFiles()) {
				_ = w.Add(dir) // adding a watched directory again is harmless
			}
		}
	}
}

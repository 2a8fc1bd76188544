package gateway

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// newWatcher sets the watch up before the server reports that it started,
// so no change made after that is missed; watch then runs the loop.
func (s *Server) newWatcher(file string) *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("config file watching unavailable; reload with SIGHUP", "error", err)
		return nil
	}
	dir := filepath.Dir(absPath(file))
	if err := w.Add(dir); err != nil {
		s.log.Warn("config file watching unavailable; reload with SIGHUP", "dir", dir, "error", err)
		_ = w.Close()
		return nil
	}
	return w
}

func absPath(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		return abs
	}
	return file
}

// watch reloads when file changes. It watches the file's directory, so
// editors that replace the file (write a temp file, rename it over) and
// Kubernetes ConfigMap symlink swaps are seen too. Bursts of events are
// coalesced: one reload 200 ms after the last event.
func (s *Server) watch(ctx context.Context, w *fsnotify.Watcher, file string) {
	defer w.Close()
	base := filepath.Base(absPath(file))
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
			name := filepath.Base(ev.Name)
			if name == base || name == "..data" { // ..data: Kubernetes ConfigMap swap
				timer.Reset(200 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("config file watch error", "error", err)
		case <-timer.C:
			s.log.Info("config file changed; reloading", "file", file)
			s.requestReload()
		}
	}
}

package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lineWriter records every Write call it receives, so tests can check that
// no line is ever split between two writes.
type lineWriter struct {
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *lineWriter) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.Join(w.writes, nil))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %s", path, err)
	}
	return string(b)
}

func TestSinksSameSpecSharesSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut lineWriter
	s := NewSinks(&out, &errOut)
	defer s.Close()

	a, err := s.Sink(filepath.Join(dir, "a.log"))
	if err != nil {
		t.Fatalf("open: %s", err)
	}
	b, err := s.Sink(filepath.Join(dir, "x", "..", "a.log"))
	if err != nil {
		t.Fatalf("open again: %s", err)
	}
	if a != b {
		t.Errorf("got two sinks for one file, want one shared sink")
	}
	so1, _ := s.Sink("stdout")
	so2, _ := s.Sink("stdout")
	se, _ := s.Sink("stderr")
	if so1 != so2 || so1 == se {
		t.Errorf("got stdout %p/%p and stderr %p, want stdout shared and distinct from stderr", so1, so2, se)
	}
	if _, err := so1.Write([]byte("to stdout\n")); err != nil {
		t.Fatalf("write: %s", err)
	}
	if _, err := se.Write([]byte("to stderr")); err != nil {
		t.Fatalf("write: %s", err)
	}
	if got := out.all(); got != "" {
		t.Errorf("got %q on stdout before a flush, want it buffered", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %s", err)
	}
	if got, want := out.all(), "to stdout\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if got, want := errOut.all(), "to stderr\n"; got != want {
		t.Errorf("stderr (newline added): got %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.log")); err != nil {
		t.Errorf("got %s, want the file created at open", err)
	}
}

func TestSinksOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewSinks(&lineWriter{}, &lineWriter{})
	tests := []struct {
		name string
		spec string
	}{
		{"empty", ""},
		{"missing directory", filepath.Join(dir, "nope", "a.log")},
		{"directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.Sink(tt.spec); err == nil {
				t.Errorf("got no error, want one")
			}
		})
	}
}

func TestSinkConcurrentWritersWriteWholeLines(t *testing.T) {
	t.Parallel()
	const writers, lines = 8, 1000
	var out lineWriter
	s := NewSinks(&out, &lineWriter{})
	sk, _ := s.Sink("stdout")

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				// Lengths vary from a few bytes to ~3 KiB so the buffer
				// fills at every possible offset.
				pad := strings.Repeat("x", (i*131)%3000)
				line := fmt.Sprintf("w=%d i=%d %s end\n", w, i, pad)
				if _, err := sk.Write([]byte(line)); err != nil {
					t.Errorf("write: %s", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %s", err)
	}

	for i, w := range out.writes {
		if len(w) == 0 || w[len(w)-1] != '\n' {
			t.Fatalf("write %d of %d bytes does not end a line", i, len(w))
		}
		if len(w) > sinkBufferSize {
			t.Fatalf("write %d: got %d bytes, want at most the buffer size %d", i, len(w), sinkBufferSize)
		}
	}
	seen := make(map[string]bool)
	for line := range strings.SplitSeq(strings.TrimSuffix(out.all(), "\n"), "\n") {
		var w, i int
		if _, err := fmt.Sscanf(line, "w=%d i=%d", &w, &i); err != nil {
			t.Fatalf("torn line %.80q: %s", line, err)
		}
		if want := fmt.Sprintf("w=%d i=%d %s end", w, i, strings.Repeat("x", (i*131)%3000)); line != want {
			t.Fatalf("torn line %.80q... (%d bytes), want %d bytes", line, len(line), len(want))
		}
		key := fmt.Sprintf("%d/%d", w, i)
		if seen[key] {
			t.Fatalf("line %s written twice", key)
		}
		seen[key] = true
	}
	if got, want := len(seen), writers*lines; got != want {
		t.Errorf("got %d lines, want %d", got, want)
	}
}

func TestSinkLineLargerThanBuffer(t *testing.T) {
	t.Parallel()
	var out lineWriter
	s := NewSinks(&out, &lineWriter{})
	sk, _ := s.Sink("stdout")
	small := "small\n"
	big := strings.Repeat("b", sinkBufferSize+100)
	if _, err := sk.Write([]byte(small)); err != nil {
		t.Fatalf("write: %s", err)
	}
	if _, err := sk.Write([]byte(big)); err != nil {
		t.Fatalf("write: %s", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %s", err)
	}
	if got, want := len(out.writes), 2; got != want {
		t.Fatalf("got %d writes, want %d (buffer, then the big line whole)", got, want)
	}
	if got, want := string(out.writes[1]), big+"\n"; got != want {
		t.Errorf("got a big write of %d bytes, want %d", len(got), len(want))
	}
	if got := out.all(); got != small+big+"\n" {
		t.Errorf("got %d bytes in total, want %d in order", len(got), len(small+big)+1)
	}
}

func TestSinkReopenAfterRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	rotated := path + ".1"
	s := NewSinks(&lineWriter{}, &lineWriter{})
	defer s.Close()
	sk, err := s.Sink(path)
	if err != nil {
		t.Fatalf("open: %s", err)
	}

	for i := range 3 {
		fmt.Fprintf(sk, "before %d\n", i)
	}
	if err := os.Rename(path, rotated); err != nil {
		t.Fatalf("rename: %s", err)
	}
	// Lines written after the rename but before the reopen still belong to
	// the old file.
	fmt.Fprintf(sk, "before 3\n")
	if err := s.Reopen(); err != nil {
		t.Fatalf("reopen: %s", err)
	}
	for i := range 2 {
		fmt.Fprintf(sk, "after %d\n", i)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %s", err)
	}

	if got, want := readFile(t, rotated), "before 0\nbefore 1\nbefore 2\nbefore 3\n"; got != want {
		t.Errorf("rotated file: got %q, want %q", got, want)
	}
	if got, want := readFile(t, path), "after 0\nafter 1\n"; got != want {
		t.Errorf("new file: got %q, want %q", got, want)
	}
}

func TestSinkReopenFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	s := NewSinks(&lineWriter{}, &lineWriter{})
	defer s.Close()
	sk, err := s.Sink(filepath.Join(sub, "a.log"))
	if err != nil {
		t.Fatalf("open: %s", err)
	}
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err == nil {
		t.Fatalf("got no error reopening into a missing directory, want one")
	}
	fmt.Fprintf(sk, "still here\n")
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %s", err)
	}
	if got, want := readFile(t, filepath.Join(moved, "a.log")), "still here\n"; got != want {
		t.Errorf("got %q, want %q in the old file", got, want)
	}
}

// TestSinksRunFlushesPeriodically runs on the synctest clock: the
// interval passes without a real wait.
func TestSinksRunFlushesPeriodically(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.log")
	synctest.Test(t, func(t *testing.T) {
		s := NewSinks(&lineWriter{}, &lineWriter{})
		defer s.Close()
		sk, err := s.Sink(path)
		if err != nil {
			t.Fatalf("open: %s", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Run(ctx)
		}()

		fmt.Fprintf(sk, "tick\n")
		time.Sleep(flushInterval - time.Nanosecond)
		synctest.Wait()
		if got := readFile(t, path); got != "" {
			t.Errorf("before the first interval ended: got %q, want nothing written yet", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got, want := readFile(t, path), "tick\n"; got != want {
			t.Fatalf("after one interval: got %q, want %q written by the periodic flush", got, want)
		}

		fmt.Fprintf(sk, "last\n")
		cancel()
		<-done
		if got, want := readFile(t, path), "tick\nlast\n"; got != want {
			t.Errorf("after Run returned: got %q, want %q", got, want)
		}
	})
}

func TestSinksClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.log")
	s := NewSinks(&lineWriter{}, &lineWriter{})
	sk, err := s.Sink(path)
	if err != nil {
		t.Fatalf("open: %s", err)
	}
	fmt.Fprintf(sk, "one\n")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %s", err)
	}
	if got, want := readFile(t, path), "one\n"; got != want {
		t.Errorf("got %q, want %q flushed by Close", got, want)
	}
	if _, err := sk.Write([]byte("two\n")); !errors.Is(err, errSinksClosed) {
		t.Errorf("write after close: got %v, want errSinksClosed", err)
	}
	if _, err := s.Sink(path); !errors.Is(err, errSinksClosed) {
		t.Errorf("sink after close: got %v, want errSinksClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: got %s, want nil", err)
	}
}

func TestSinkWriteErrorDropsLinesAndRecovers(t *testing.T) {
	t.Parallel()
	out := &lineWriter{fail: errors.New("disk full")}
	var logBuf bytes.Buffer
	s := NewSinks(out, &lineWriter{})
	s.SetErrorLog(slog.New(slog.NewTextHandler(&logBuf, nil)))
	sk, _ := s.Sink("stdout")

	fmt.Fprintf(sk, "lost\n")
	err := s.Flush()
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the write error", err)
	}
	failing := false
	s.report(err, &failing)
	s.report(err, &failing) // reported once, not once per tick

	out.mu.Lock()
	out.fail = nil
	out.mu.Unlock()
	fmt.Fprintf(sk, "kept\n")
	err = s.Flush()
	if err != nil {
		t.Fatalf("got %s after recovery, want nil", err)
	}
	s.report(err, &failing)
	if got, want := out.all(), "kept\n"; got != want {
		t.Errorf("got %q, want %q (the failed buffer is dropped, not retried forever)", got, want)
	}
	logged := logBuf.String()
	if n := strings.Count(logged, "access log write failed"); n != 1 {
		t.Errorf("got %d failure reports, want 1:\n%s", n, logged)
	}
	if !strings.Contains(logged, "access log writes recovered") {
		t.Errorf("got no recovery report:\n%s", logged)
	}
}

func BenchmarkSinkWrite(b *testing.B) {
	s := NewSinks(&lineWriter{}, &lineWriter{})
	path := filepath.Join(b.TempDir(), "bench.log")
	sk, err := s.Sink(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	line := []byte(`{"time":"2026-01-02T03:04:05.678Z","request_id":"abc","status":200}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sk.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// sinkBufferSize is how many bytes a sink holds before it writes them out.
const sinkBufferSize = 64 << 10

// flushInterval is how often Run writes out buffered lines.
const flushInterval = time.Second

// errSinksClosed is returned by Sink and by writes after Close.
var errSinksClosed = errors.New("log sinks are closed")

var _ Sink = (*sink)(nil)

// Sink is one log output: buffered, safe for concurrent use.
type Sink interface {
	// Write writes one complete log line (with its trailing newline).
	Write(line []byte) (int, error)
}

// Sinks hands out the shared log outputs named in the config: "stdout",
// "stderr" or a file path. The same spec always yields the same sink, so
// every route that logs to one file shares one buffer and one descriptor,
// across config reloads, until Close. It is safe for concurrent use.
type Sinks struct {
	stdout, stderr io.Writer

	mu     sync.Mutex
	sinks  map[string]*sink
	order  []*sink // in opening order, for deterministic flushing
	closed bool
	log    *slog.Logger
}

// NewSinks returns an empty set of sinks whose "stdout" and "stderr" write
// to the given writers (normally os.Stdout and os.Stderr; nil discards).
func NewSinks(stdout, stderr io.Writer) *Sinks {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	return &Sinks{stdout: stdout, stderr: stderr, sinks: make(map[string]*sink)}
}

// SetErrorLog makes Run report write failures to l: once when a sink starts
// failing, and once when it recovers. Without it Run drops them silently.
// Call it before Run.
func (s *Sinks) SetErrorLog(l *slog.Logger) {
	s.mu.Lock()
	s.log = l
	s.mu.Unlock()
}

// Sink returns the shared sink for spec: "stdout", "stderr", or a file path,
// opened with O_APPEND|O_CREATE|O_WRONLY and mode 0644. Relative paths are
// resolved against the working directory, so "a.log" and "./a.log" share
// a sink.
func (s *Sinks) Sink(spec string) (Sink, error) {
	if spec == "" {
		return nil, errors.New("empty log output")
	}
	key := spec
	if spec != "stdout" && spec != "stderr" {
		abs, err := filepath.Abs(spec)
		if err != nil {
			return nil, fmt.Errorf("log output %s: %w", spec, err)
		}
		key = abs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSinksClosed
	}
	if sk, ok := s.sinks[key]; ok {
		return sk, nil
	}
	sk := &sink{name: key, buf: make([]byte, 0, sinkBufferSize)}
	switch key {
	case "stdout":
		sk.w = s.stdout
	case "stderr":
		sk.w = s.stderr
	default:
		f, err := openLog(key)
		if err != nil {
			return nil, err
		}
		sk.path, sk.f, sk.w = key, f, f
	}
	s.sinks[key] = sk
	s.order = append(s.order, sk)
	return sk, nil
}

// Reopen reopens every file sink at its path, for log rotation (SIGUSR1):
// lines buffered so far go to the old file, later lines to the new one.
// stdout and stderr are left alone. A sink whose file cannot be reopened
// keeps writing to the old one; all such errors are returned, joined.
func (s *Sinks) Reopen() error {
	var errs []error
	for _, sk := range s.snapshot() {
		if sk.f != nil {
			errs = append(errs, sk.reopen())
		}
	}
	return errors.Join(errs...)
}

// Flush writes out every sink's buffered lines.
func (s *Sinks) Flush() error {
	var errs []error
	for _, sk := range s.snapshot() {
		errs = append(errs, sk.flush())
	}
	return errors.Join(errs...)
}

// Run flushes every sink once a second until ctx is done, then flushes a
// last time. The server owns the goroutine that runs it.
func (s *Sinks) Run(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			s.report(s.Flush(), &failing)
			return
		case <-t.C:
			s.report(s.Flush(), &failing)
		}
	}
}

// report logs err when the sinks start failing and a notice when they
// recover, so a full disk does not flood the log once a second.
func (s *Sinks) report(err error, failing *bool) {
	s.mu.Lock()
	l := s.log
	s.mu.Unlock()
	switch {
	case err != nil && !*failing:
		*failing = true
		if l != nil {
			l.LogAttrs(context.Background(), slog.LevelError, "access log write failed; lines are being dropped",
				slog.String("error", err.Error()))
		}
	case err == nil && *failing:
		*failing = false
		if l != nil {
			l.LogAttrs(context.Background(), slog.LevelInfo, "access log writes recovered")
		}
	}
}

// Close flushes every sink and closes the files. Later writes fail, and
// Sink returns an error.
func (s *Sinks) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := s.order
	s.mu.Unlock()
	var errs []error
	for _, sk := range all {
		errs = append(errs, sk.close())
	}
	return errors.Join(errs...)
}

func (s *Sinks) snapshot() []*sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order[:len(s.order):len(s.order)]
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log output: %w", err)
	}
	return f, nil
}

// sink is one buffered output. Lines are appended whole under mu; a line is
// never split across two writes to the underlying writer. The buffer is a
// plain byte slice rather than a bufio.Writer so that one failed write
// (a full disk) drops the lines it held instead of failing every later
// write until a reopen.
type sink struct {
	mu     sync.Mutex
	buf    []byte
	w      io.Writer
	f      *os.File // nil for stdout and stderr
	path   string   // the file path; "" for stdout and stderr
	name   string   // the spec, for error messages
	err    error    // the first write error since the last flush
	closed bool
}

// Write appends one line to the buffer, adding a trailing newline if line
// lacks one. When the line does not fit, the buffer is written out first;
// a line larger than the whole buffer is written out directly, in one
// write.
func (sk *sink) Write(line []byte) (int, error) {
	n := len(line)
	nl := n == 0 || line[n-1] != '\n'
	need := n
	if nl {
		need++
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.closed {
		return 0, errSinksClosed
	}
	if len(sk.buf)+need > cap(sk.buf) {
		if err := sk.writeOut(); err != nil {
			return 0, err
		}
	}
	if need > cap(sk.buf) {
		big := line
		if nl {
			big = append(line[:n:n], '\n')
		}
		if _, err := sk.w.Write(big); err != nil {
			sk.setErr(err)
			return 0, fmt.Errorf("write log line: %w", err)
		}
		return n, nil
	}
	sk.buf = append(sk.buf, line...)
	if nl {
		sk.buf = append(sk.buf, '\n')
	}
	return n, nil
}

// writeOut writes the buffer to w and empties it, even on failure, so a
// broken output cannot grow memory. The caller holds mu.
func (sk *sink) writeOut() error {
	if len(sk.buf) == 0 {
		return nil
	}
	_, err := sk.w.Write(sk.buf)
	sk.buf = sk.buf[:0]
	if err != nil {
		sk.setErr(err)
		return fmt.Errorf("write log lines: %w", err)
	}
	return nil
}

func (sk *sink) setErr(err error) {
	if sk.err == nil {
		sk.err = err
	}
}

// flush writes out the buffer and returns the first write error seen since
// the previous flush, if any.
func (sk *sink) flush() error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.closed {
		return nil
	}
	_ = sk.writeOut()
	err := sk.err
	sk.err = nil
	if err != nil {
		return fmt.Errorf("log output %s: %w", sk.name, err)
	}
	return nil
}

func (sk *sink) reopen() error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.closed {
		return nil
	}
	_ = sk.writeOut()
	f, err := openLog(sk.path)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", sk.path, err)
	}
	old := sk.f
	sk.f, sk.w = f, f
	if err := old.Close(); err != nil {
		return fmt.Errorf("close rotated %s: %w", sk.path, err)
	}
	return nil
}

func (sk *sink) close() error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.closed {
		return nil
	}
	_ = sk.writeOut()
	err := sk.err
	sk.err = nil
	sk.closed = true
	if sk.f != nil {
		if cerr := sk.f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("log output %s: %w", sk.name, err)
	}
	return nil
}

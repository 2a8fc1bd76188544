package upstream

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Active health checks.
//
// startActive runs one goroutine per target. Each waits a random part of
// the interval first, so the probes of many targets spread over the
// interval instead of leaving together, and then probes the target once per
// interval: it opens a new connection with Target.Dial (TLS for https
// targets), sends "GET path HTTP/1.1" with "Connection: close", reads the
// status line and headers, discards at most probeBodyLimit bytes of body
// and closes the connection. The whole probe, dial included, is bounded by
// the configured timeout; a probe still running when the next tick comes
// delays that tick rather than overlapping it.
//
// The verdict of one probe is pass (a status in expected_statuses, or any
// 2xx or 3xx when the list is empty) or fail (another status, an error, a
// timeout). A healthy target turns unhealthy after unhealthy_threshold
// fails in a row; an unhealthy one turns healthy after healthy_threshold
// passes in a row. The state lives on the Target, so it survives a reload
// that stops one set of checkers and starts another; the counts of the
// current run of passes or fails start again from zero.

// probeUserAgent is the User-Agent of active health check probes.
const probeUserAgent = "portico-health-check"

// probeBodyLimit is the most of a probe response's body that is read (and
// discarded) before the connection is closed.
const probeBodyLimit = 64 << 10

// startActive starts active health checks of the targets of service svc
// and returns the function that stops them. stop cancels the probes in
// flight, waits for every goroutine to return and may be called more than
// once; no probe starts after it returned. onChange (which may be nil) is
// called from the checking goroutine of t each time t's active state
// changes, after the change is recorded on t. A nil cfg or an empty target
// list starts nothing. A nil logger discards.
func startActive(svc string, cfg *config.ActiveHealthCheck, targets []*Target, connectTimeout time.Duration, logger *slog.Logger, onChange func(t *Target, healthy bool)) (stop func()) {
	if cfg == nil || len(targets) == 0 {
		return func() {}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	interval := cmp.Or(cfg.Interval.D(), config.DefaultHealthInterval.D())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, t := range targets {
		c := &activeChecker{
			svc:            svc,
			target:         t,
			path:           cfg.Path,
			host:           cmp.Or(cfg.Host, t.Host),
			interval:       interval,
			timeout:        cmp.Or(cfg.Timeout.D(), config.DefaultHealthTimeout.D()),
			connectTimeout: connectTimeout,
			expected:       slices.Clone(cfg.ExpectedStatuses),
			healthyAfter:   max(cfg.HealthyThreshold, 1),
			unhealthyAfter: max(cfg.UnhealthyThreshold, 1),
			logger:         logger,
			onChange:       onChange,
		}
		wg.Go(func() { c.run(ctx, rand.N(interval)) })
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// activeChecker probes one target. Only its goroutine touches it.
type activeChecker struct {
	svc            string
	target         *Target
	path           string
	host           string // Host header
	interval       time.Duration
	timeout        time.Duration // bounds one probe, dial included
	connectTimeout time.Duration
	expected       []int // empty: 200..399
	healthyAfter   int
	unhealthyAfter int
	logger         *slog.Logger
	onChange       func(t *Target, healthy bool)

	passes, fails int // current run of passing or failing probes
}

// run probes the target every interval after waiting first, until ctx is
// done.
func (c *activeChecker) run(ctx context.Context, first time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		status, err := c.probe(ctx)
		if ctx.Err() != nil {
			return // stopped: the probe's verdict means nothing
		}
		c.record(status, err)
		// The next probe starts one interval after this one started, or at
		// once when this one took longer than that.
		timer.Reset(max(c.interval-time.Since(start), 0))
	}
}

// record folds one probe's outcome into the runs of passes and fails and
// flips the target's state when a run reaches its threshold.
func (c *activeChecker) record(status int, err error) {
	ok := err == nil && c.pass(status)
	if ok {
		c.passes, c.fails = c.passes+1, 0
		if c.passes < c.healthyAfter || c.target.ActiveHealthy() {
			return
		}
	} else {
		c.passes, c.fails = 0, c.fails+1
		if c.fails < c.unhealthyAfter || !c.target.ActiveHealthy() {
			return
		}
	}
	if !c.target.setActiveHealthy(ok) {
		return
	}
	attrs := []slog.Attr{
		slog.String("service", c.svc),
		slog.String("upstream", c.target.URL),
	}
	if ok {
		attrs = append(attrs, slog.Int("status", status), slog.Int("passes", c.passes))
		c.logger.LogAttrs(context.Background(), slog.LevelInfo, "upstream target healthy", attrs...)
	} else {
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		} else {
			attrs = append(attrs, slog.Int("status", status))
		}
		attrs = append(attrs, slog.Int("failures", c.fails))
		c.logger.LogAttrs(context.Background(), slog.LevelWarn, "upstream target unhealthy", attrs...)
	}
	if c.onChange != nil {
		c.onChange(c.target, ok)
	}
}

// pass reports whether status passes the check.
func (c *activeChecker) pass(status int) bool {
	if len(c.expected) == 0 {
		return status >= 200 && status < 400
	}
	return slices.Contains(c.expected, status)
}

// errProbeTimeout is a probe that did not finish within its timeout.
var errProbeTimeout = errors.New("health check timed out")

// probe sends one health check request and returns the answer's status.
// It returns within the checker's timeout, and at once when ctx is done.
func (c *activeChecker) probe(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.target.Dial(ctx, c.connectTimeout)
	if err != nil {
		return 0, c.probeErr(ctx, err)
	}
	defer conn.Close()
	// The deadline bounds the exchange; cancelling ctx (stop, or the
	// timeout itself) moves it to now so a blocked read or write returns.
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, fmt.Errorf("health check: %w", err)
	}
	unblock := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer unblock()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.host+c.path, nil)
	if err != nil {
		return 0, fmt.Errorf("health check request: %w", err)
	}
	req.Host = c.host
	req.Header.Set("User-Agent", probeUserAgent)
	req.Close = true
	bw := bufio.NewWriterSize(conn, 512)
	if err := req.Write(bw); err != nil {
		return 0, c.probeErr(ctx, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, c.probeErr(ctx, err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
	if err != nil {
		return 0, c.probeErr(ctx, err)
	}
	// Drain a little of the body so a small answer ends cleanly; the
	// status alone decides, and the connection is closed either way.
	_, _ = io.CopyN(io.Discard, resp.Body, probeBodyLimit)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// probeErr names a probe failure: a timeout is reported as such, other
// errors keep their text (addresses and the system's reason, no body).
func (c *activeChecker) probeErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w after %s", errProbeTimeout, c.timeout)
	}
	return fmt.Errorf("health check: %w", err)
}

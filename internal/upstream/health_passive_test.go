package upstream

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// outlierTargets returns n targets that are never dialed.
func outlierTargets(n int) []*Target {
	ts := make([]*Target, n)
	for i := range ts {
		addr := fmt.Sprintf("10.0.0.%d:80", i+1)
		ts[i] = newTarget("http://"+addr, addr, addr)
	}
	return ts
}

// outlierConfig is a passive check with the defaults and the given
// triggers.
func outlierConfig(c5xx, failures int) *config.PassiveHealthCheck {
	return &config.PassiveHealthCheck{
		Consecutive5xx:      c5xx,
		ConsecutiveFailures: failures,
		BaseEjection:        config.DefaultBaseEjection,
		MaxEjection:         config.DefaultMaxEjection,
		MaxEjectedPercent:   100,
	}
}

// ejection is one onEject call.
type ejection struct {
	target *Target
	until  time.Time
}

// ejectionLog collects onEject calls.
type ejectionLog struct {
	mu   sync.Mutex
	list []ejection
}

func (l *ejectionLog) record(t *Target, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, ejection{t, until})
}

func (l *ejectionLog) all() []ejection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ejection(nil), l.list...)
}

var outlierEpoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestOutlierTriggers(t *testing.T) {
	t.Parallel()
	const (
		S = Success
		E = ServerError
		F = ConnFailure
		C = Canceled
	)
	tests := []struct {
		name        string
		c5xx, fails int
		seq         []Result
		wantAfter   int // results after which the target is first ejected; 0: never
	}{
		{"5xx at threshold", 5, 3, []Result{E, E, E, E, E}, 5},
		{"5xx below threshold", 5, 3, []Result{E, E, E, E}, 0},
		{"success resets 5xx", 5, 3, []Result{E, E, E, E, S, E, E, E, E}, 0},
		{"success resets 5xx then threshold", 5, 3, []Result{E, E, E, E, S, E, E, E, E, E}, 10},
		{"conn failures at threshold", 5, 3, []Result{F, F, F}, 3},
		{"success resets conn failures", 5, 3, []Result{F, F, S, F, F}, 0},
		{"canceled changes nothing", 5, 3, []Result{E, E, C, C, E, E, C, E}, 8},
		{"canceled keeps conn count", 5, 3, []Result{F, C, F, C, F}, 5},
		{"counts are separate", 3, 3, []Result{E, F, E, F, E}, 5},
		{"conn failure does not reset 5xx", 3, 5, []Result{E, E, F, E}, 4},
		{"5xx disabled", -1, 3, []Result{E, E, E, E, E, E, E, E, E, E}, 0},
		{"5xx disabled conn still ejects", -1, 3, []Result{E, F, E, F, E, F}, 6},
		{"conn failures disabled", 5, -1, []Result{F, F, F, F, F, F, F, F}, 0},
		{"conn failures disabled 5xx still ejects", 2, -1, []Result{F, E, F, E}, 4},
		{"threshold one", 1, 1, []Result{S, E}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := outlierTargets(2)
			var log ejectionLog
			o := newOutlier("orders", outlierConfig(tt.c5xx, tt.fails), ts, nil, log.record)
			now := outlierEpoch
			got := 0
			for i, r := range tt.seq {
				now = now.Add(time.Millisecond)
				o.observe(ts[0], r, now)
				if got == 0 && ts[0].ejected(now.UnixNano()) {
					got = i + 1
				}
			}
			if got != tt.wantAfter {
				t.Errorf("ejected after result: got %d, want %d", got, tt.wantAfter)
			}
			if ts[1].EjectedUntil() != (time.Time{}) {
				t.Errorf("other target ejected until %s, want not ejected", ts[1].EjectedUntil())
			}
			wantEjections := 0
			if tt.wantAfter > 0 {
				wantEjections = 1
			}
			if n := len(log.all()); n != wantEjections {
				t.Errorf("onEject calls: got %d, want %d", n, wantEjections)
			}
		})
	}
}

func TestOutlierEjectionGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(1)
	cfg := outlierConfig(2, -1)
	cfg.BaseEjection = config.Duration(10 * time.Second)
	cfg.MaxEjection = config.Duration(35 * time.Second)
	var log ejectionLog
	o := newOutlier("orders", cfg, ts, nil, log.record)

	now := outlierEpoch
	want := []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 35 * time.Second, 35 * time.Second}
	for i, d := range want {
		o.observe(ts[0], ServerError, now)
		o.observe(ts[0], ServerError, now)
		until := ts[0].EjectedUntil()
		if got := until.Sub(now); got != d {
			t.Fatalf("ejection %d: got %s, want %s", i+1, got, d)
		}
		if !ts[0].ejected(now.Add(d - 1).UnixNano()) {
			t.Errorf("ejection %d: not ejected just before its end", i+1)
		}
		if ts[0].ejected(until.UnixNano()) {
			t.Errorf("ejection %d: still ejected at its end", i+1)
		}
		if e := log.all(); len(e) != i+1 || e[i].target != ts[0] || !e[i].until.Equal(until) {
			t.Errorf("ejection %d: onEject got %v, want target %s until %s", i+1, e, ts[0].URL, until)
		}
		// Back, and a success right away does not forgive: it is less than
		// a base ejection after the end.
		now = until
		o.observe(ts[0], Success, now)
	}
}

func TestOutlierEjectionCountResets(t *testing.T) {
	t.Parallel()
	const base = 10 * time.Second
	tests := []struct {
		name      string
		successAt time.Duration // after the first ejection ended; <0: none
		wantNext  time.Duration // length of the next ejection
	}{
		{"no success", -1, 2 * base},
		{"success right after the end", 0, 2 * base},
		{"success just under base after the end", base - time.Nanosecond, 2 * base},
		{"success base after the end", base, base},
		{"success long after the end", time.Hour, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := outlierTargets(1)
			cfg := outlierConfig(1, -1)
			o := newOutlier("orders", cfg, ts, nil, nil)
			now := outlierEpoch
			o.observe(ts[0], ServerError, now)
			end := ts[0].EjectedUntil()
			if end.Sub(now) != base {
				t.Fatalf("first ejection: got %s, want %s", end.Sub(now), base)
			}
			now = end
			if tt.successAt >= 0 {
				now = end.Add(tt.successAt)
				o.observe(ts[0], Success, now)
			}
			o.observe(ts[0], ServerError, now)
			if got := ts[0].EjectedUntil().Sub(now); got != tt.wantNext {
				t.Errorf("next ejection: got %s, want %s", got, tt.wantNext)
			}
		})
	}
}

func TestOutlierIgnoresFailuresWhileEjected(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(1)
	o := newOutlier("orders", outlierConfig(2, 2), ts, nil, nil)
	now := outlierEpoch
	o.observe(ts[0], ConnFailure, now)
	o.observe(ts[0], ConnFailure, now)
	until := ts[0].EjectedUntil()
	// Requests that were in flight fail while the target is ejected.
	for range 10 {
		o.observe(ts[0], ConnFailure, now.Add(time.Second))
		o.observe(ts[0], ServerError, now.Add(time.Second))
	}
	if got := ts[0].EjectedUntil(); !got.Equal(until) {
		t.Errorf("ejected until: got %s, want %s (unchanged)", got, until)
	}
	// After the end, one failure is not enough: the counts started over.
	o.observe(ts[0], ConnFailure, until)
	if ts[0].ejected(until.UnixNano()) {
		t.Errorf("ejected again after one failure, want two")
	}
	o.observe(ts[0], ConnFailure, until)
	if !ts[0].ejected(until.UnixNano()) {
		t.Errorf("not ejected again after two failures")
	}
}

func TestOutlierMaxEjectedPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		targets int
		percent int
		want    int // targets ejected when all fail
	}{
		{"3 at 50%", 3, 50, 1},
		{"4 at 50%", 4, 50, 2},
		{"2 at 50%", 2, 50, 1},
		{"1 at 50%", 1, 50, 0},
		{"1 at 99%", 1, 99, 0},
		{"1 at 100%", 1, 100, 1},
		{"3 at 100%", 3, 100, 3},
		{"10 at 0%", 10, 0, 0},
		{"10 at 10%", 10, 10, 1},
		{"10 at 19%", 10, 19, 1},
		{"40 at 25%", 40, 25, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := outlierTargets(tt.targets)
			cfg := outlierConfig(1, 1)
			cfg.MaxEjectedPercent = tt.percent
			o := newOutlier("orders", cfg, ts, nil, nil)
			now := outlierEpoch
			for round := range 3 {
				for _, tg := range ts {
					o.observe(tg, ServerError, now.Add(time.Duration(round)*time.Millisecond))
				}
			}
			check := now.Add(time.Second)
			got := 0
			for _, tg := range ts {
				if tg.ejected(check.UnixNano()) {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("ejected: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOutlierMaxEjectedPercentFreesUp(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(3)
	cfg := outlierConfig(2, -1)
	cfg.MaxEjectedPercent = 50
	o := newOutlier("orders", cfg, ts, nil, nil)
	now := outlierEpoch
	o.observe(ts[0], ServerError, now)
	o.observe(ts[0], ServerError, now)
	o.observe(ts[1], ServerError, now)
	o.observe(ts[1], ServerError, now)
	if !ts[0].ejected(now.UnixNano()) || ts[1].ejected(now.UnixNano()) {
		t.Fatalf("got ejected %t %t, want true false", ts[0].ejected(now.UnixNano()), ts[1].ejected(now.UnixNano()))
	}
	// Once the first ejection is over, the refused target's next failure
	// ejects it: it kept its count.
	later := ts[0].EjectedUntil()
	o.observe(ts[1], ServerError, later)
	if !ts[1].ejected(later.UnixNano()) {
		t.Errorf("second target not ejected once the first came back")
	}
}

func TestOutlierLogsEjection(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(2)
	var logs syncBuffer
	o := newOutlier("orders", outlierConfig(5, 3), ts, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	for range 3 {
		o.observe(ts[1], ConnFailure, outlierEpoch)
	}
	want := `level=WARN msg="upstream target ejected" service=orders upstream=http://10.0.0.2:80 reason=consecutive_failures count=3 ejection=10s ejections_in_a_row=1`
	if got := logs.String(); !strings.Contains(got, want) {
		t.Errorf("log: got %q, want it to contain %q", got, want)
	}
}

func TestOutlierNil(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(1)
	if o := newOutlier("orders", nil, ts, nil, nil); o != nil {
		t.Fatalf("newOutlier(nil config): got %p, want nil", o)
	}
	if o := newOutlier("orders", outlierConfig(-1, -1), ts, nil, nil); o != nil {
		t.Fatalf("newOutlier(no trigger): got %p, want nil", o)
	}
	var o *outlier
	o.observe(ts[0], ServerError, outlierEpoch) // no-op, no panic
}

func TestOutlierManyTargetsAndStrangers(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(outlierScanMax * 3)
	o := newOutlier("orders", outlierConfig(1, 1), ts, nil, nil)
	if o.index == nil {
		t.Fatalf("index: got nil, want a map for %d targets", len(ts))
	}
	last := ts[len(ts)-1]
	o.observe(last, ServerError, outlierEpoch)
	if !last.ejected(outlierEpoch.UnixNano()) {
		t.Errorf("last target not ejected")
	}
	stranger := outlierTargets(1)[0]
	o.observe(stranger, ServerError, outlierEpoch)
	if stranger.ejected(outlierEpoch.UnixNano()) {
		t.Errorf("target of another service ejected")
	}
}

func TestOutlierConcurrentFailuresEjectOnce(t *testing.T) {
	t.Parallel()
	ts := outlierTargets(4)
	var log ejectionLog
	o := newOutlier("orders", outlierConfig(3, 3), ts, nil, log.record)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 200 {
				r := ServerError
				if g%2 == 0 {
					r = ConnFailure
				}
				o.observe(ts[0], r, outlierEpoch)
			}
		})
	}
	wg.Wait()
	if n := len(log.all()); n != 1 {
		t.Errorf("ejections: got %d, want 1", n)
	}
}

func BenchmarkOutlierObserve(b *testing.B) {
	for _, n := range []int{4, 64} {
		ts := outlierTargets(n)
		cfg := outlierConfig(1<<30, 1<<30) // never reached: the counting path
		o := newOutlier("orders", cfg, ts, nil, nil)
		now := outlierEpoch
		b.Run(fmt.Sprintf("targets=%d/success", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				o.observe(ts[i%n], Success, now)
			}
		})
		b.Run(fmt.Sprintf("targets=%d/server_error", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				o.observe(ts[i%n], ServerError, now)
			}
		})
		b.Run(fmt.Sprintf("targets=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r := Success
					if i%16 == 0 {
						r = ServerError
					}
					o.observe(ts[i%n], r, now)
					i++
				}
			})
		})
	}
}

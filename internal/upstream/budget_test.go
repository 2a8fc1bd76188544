package upstream

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

func budgetFor(ratio float64, minPerSecond int, window time.Duration) *RetryBudget {
	return NewRetryBudget(config.RetryBudget{Ratio: ratio, MinPerSecond: minPerSecond, Window: config.Duration(window)})
}

// drain withdraws at now until the budget refuses and returns how many
// retries it allowed.
func drain(b *RetryBudget, now time.Time) int {
	n := 0
	for b.Withdraw(now) {
		n++
		if n > 1_000_000 {
			break
		}
	}
	return n
}

func TestRetryBudgetRatio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		ratio        float64
		minPerSecond int
		requests     int
		want         int
	}{
		{"ratio only", 0.2, 0, 100, 20},
		{"ratio rounds down", 0.2, 0, 99, 19},
		{"no requests no reserve", 0.2, 0, 0, 0},
		{"reserve only", 0.2, 5, 0, 50}, // 5/s over 10 s
		{"ratio and reserve", 0.1, 1, 100, 20},
		{"ratio 1", 1, 0, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := budgetFor(tt.ratio, tt.minPerSecond, 10*time.Second)
			for range tt.requests {
				b.Request(t0)
			}
			if got := drain(b, t0); got != tt.want {
				t.Fatalf("got %d retries, want %d", got, tt.want)
			}
		})
	}
}

// TestRetryBudgetSteadyStream sends one request every 10 ms for 30 s and
// retries each one at once: the budget lets through the ratio's share,
// give or take the bucket that rolls out of the window.
func TestRetryBudgetSteadyStream(t *testing.T) {
	t.Parallel()
	b := budgetFor(0.2, 0, 10*time.Second)
	allowed := 0
	now := t0
	for range 3000 {
		b.Request(now)
		if b.Withdraw(now) {
			allowed++
		}
		requests, retries := b.counts.sums(now.UnixNano())
		if float64(retries) > 0.2*float64(requests) {
			t.Fatalf("at +%s: %d retries for %d requests in the window, over 20%%", now.Sub(t0), retries, requests)
		}
		now = now.Add(10 * time.Millisecond)
	}
	// 3000 requests earn 600 retries; the last window's bucket boundary
	// may cost or give a bucket's worth (20).
	if allowed < 580 || allowed > 620 {
		t.Fatalf("got %d retries for 3000 requests, want about 600", allowed)
	}
}

func TestRetryBudgetMinPerSecond(t *testing.T) {
	t.Parallel()
	// A quiet service (a request a second) can still retry every one.
	b := budgetFor(0.2, 5, 10*time.Second)
	now := t0
	for i := range 60 {
		b.Request(now)
		if !b.Withdraw(now) {
			t.Fatalf("retry %d of a quiet service refused", i)
		}
		now = now.Add(time.Second)
	}
}

func TestRetryBudgetWindowRolls(t *testing.T) {
	t.Parallel()
	b := budgetFor(0.5, 0, 10*time.Second)
	for range 10 {
		b.Request(t0)
	}
	if !b.Withdraw(t0.Add(5 * time.Second)) {
		t.Fatal("retry within the window refused")
	}
	if got := drain(b, t0.Add(9*time.Second)); got != 4 {
		t.Fatalf("got %d more retries, want 4 (5 earned, 1 spent)", got)
	}
	// Eleven seconds on, the requests no longer count.
	if b.Withdraw(t0.Add(11 * time.Second)) {
		t.Fatal("retry allowed by requests that left the window")
	}
	// Nor do the retries: new requests earn a fresh budget.
	now := t0.Add(20 * time.Second)
	for range 4 {
		b.Request(now)
	}
	if got := drain(b, now); got != 2 {
		t.Fatalf("got %d retries in a new window, want 2", got)
	}
	// A clock older than the window counts nothing.
	if b.Withdraw(t0) {
		t.Fatal("retry allowed at a time older than the window")
	}
}

func TestRetryBudgetConcurrentNeverOverdraws(t *testing.T) {
	t.Parallel()
	b := budgetFor(0.2, 0, 10*time.Second)
	for range 100 {
		b.Request(t0)
	}
	var (
		granted atomic.Int64
		wg      sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if b.Withdraw(t0) {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if g := granted.Load(); g > 20 || g == 0 {
		t.Fatalf("got %d retries granted, want 1..20", g)
	}
}

func BenchmarkRetryBudget(b *testing.B) {
	b.Run("request", func(b *testing.B) {
		rb := budgetFor(0.2, 5, 10*time.Second)
		now := t0
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rb.Request(now)
			}
		})
	})
	b.Run("request+withdraw", func(b *testing.B) {
		rb := budgetFor(0.2, 5, 10*time.Second)
		now := t0
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rb.Request(now)
				rb.Withdraw(now)
			}
		})
	})
}

package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultMaxBatch bounds the number of decisions in one pipeline.
const defaultMaxBatch = 128

// errPipelineClosed is returned for decisions still queued when the Redis
// limiter is closed.
var errPipelineClosed = errors.New("redis rate limit: limiter closed")

// scriptCall is one decision waiting for its script's answer.
type scriptCall struct {
	ctx    context.Context // the caller's; a queued call whose ctx ended is not sent
	script *redis.Script
	keys   []string
	args   []any
	done   chan scriptResult // set when queued; buffered 1: the flusher never blocks on it
}

type scriptResult struct {
	vals []int64
	err  error
}

// pipeliner gathers the decisions of concurrent callers into Redis
// pipelines. No timer is involved: a caller that finds a free slot (fewer
// than maxInFlight pipelines out) sends its own command at once, exactly as
// without pipelining; callers that find every slot busy queue, and the
// goroutine of the next pipeline to return sends whatever is queued (up to
// maxBatch) as one pipeline. At low load every decision goes out alone;
// under load batches grow by themselves.
//
// Each pipeline has its own budget (the limiter's Timeout): a queued caller
// waits for its result or its own context, whichever ends first. An error
// for a pipeline (a timeout, a dropped connection) is every queued call's
// error.
type pipeliner struct {
	client      redis.UniversalClient
	timeout     time.Duration
	maxInFlight int
	maxBatch    int

	mu       sync.Mutex
	queue    []*scriptCall
	inFlight int
	closed   bool
	wg       sync.WaitGroup // flush goroutines

	pipelines atomic.Uint64 // round trips that carried queued decisions
	commands  atomic.Uint64 // decisions sent in those round trips
	direct    atomic.Uint64 // decisions sent alone (a free slot)
}

func newPipeliner(client redis.UniversalClient, timeout time.Duration, maxInFlight, maxBatch int) *pipeliner {
	return &pipeliner{client: client, timeout: timeout, maxInFlight: max(1, maxInFlight), maxBatch: max(1, maxBatch)}
}

// do runs c's script and returns its result, or ctx's error if the caller
// gives up first.
func (p *pipeliner) do(c *scriptCall) ([]int64, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPipelineClosed
	}
	if p.inFlight < p.maxInFlight {
		// A free slot implies an empty queue (a returning pipeline takes
		// the queue before it frees its slot): send c alone, now, bounded
		// by the caller's context as without pipelining.
		p.inFlight++
		p.mu.Unlock()
		p.direct.Add(1)
		ctx, cancel := context.WithTimeout(c.ctx, p.timeout)
		vals, err := c.script.Run(ctx, p.client, c.keys, c.args...).Int64Slice()
		cancel()
		p.release()
		return vals, err
	}
	c.done = make(chan scriptResult, 1)
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	select {
	case r := <-c.done:
		return r.vals, r.err
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

// release hands a finished slot to the queue: if decisions are waiting, a
// flush goroutine takes the slot and sends them; otherwise the slot is
// freed.
func (p *pipeliner) release() {
	p.mu.Lock()
	batch := p.takeLocked()
	if batch == nil {
		p.inFlight--
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go p.flush(batch)
}

// flush sends batches while decisions are queued, then frees its slot.
func (p *pipeliner) flush(batch []*scriptCall) {
	defer p.wg.Done()
	for batch != nil {
		p.exec(batch)
		p.mu.Lock()
		batch = p.takeLocked()
		if batch == nil {
			p.inFlight--
		}
		p.mu.Unlock()
	}
}

// takeLocked removes up to maxBatch queued calls whose callers still wait;
// nil when none do.
func (p *pipeliner) takeLocked() []*scriptCall {
	for len(p.queue) > 0 {
		n := min(len(p.queue), p.maxBatch)
		batch := make([]*scriptCall, 0, n)
		for _, c := range p.queue[:n] {
			if c.ctx.Err() == nil {
				batch = append(batch, c)
			}
		}
		clear(p.queue[:n])
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		if len(batch) > 0 {
			return batch
		}
	}
	return nil
}

// exec sends batch as one pipeline of EVALSHA commands and hands every
// call its result. Calls that meet NOSCRIPT (the server lost its script
// cache) are sent again with EVAL, which also reloads the script.
func (p *pipeliner) exec(batch []*scriptCall) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	p.pipelines.Add(1)
	p.commands.Add(uint64(len(batch)))
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		return nil
	})
	var retry []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		p.pipelines.Add(1)
		_, _ = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = batch[i].script.Eval(ctx, pipe, batch[i].keys, batch[i].args...)
			}
			return nil
		})
	}
	for i, c := range batch {
		vals, err := cmds[i].Int64Slice()
		c.done <- scriptResult{vals: vals, err: err}
	}
}

// shut refuses new calls and fails the queued ones. The flush goroutines
// end with their current pipeline (within one Timeout, at once when the
// client is closed); Redis.Close waits for them.
func (p *pipeliner) shut() {
	p.mu.Lock()
	p.closed = true
	queued := p.queue
	p.queue = nil
	p.mu.Unlock()
	for _, c := range queued {
		c.done <- scriptResult{err: errPipelineClosed}
	}
	p.wg.Wait()
}

// RedisStats are cumulative counters of a Redis limiter, for metrics and
// tests.
type RedisStats struct {
	// Direct counts decisions sent alone: a connection slot was free.
	Direct uint64
	// Pipelines counts round trips that carried queued decisions together.
	Pipelines uint64
	// Pipelined counts the decisions sent in those round trips.
	Pipelined uint64
}

// String summarises s for logs and benchmark output.
func (s RedisStats) String() string {
	avg := 0.0
	if s.Pipelines > 0 {
		avg = float64(s.Pipelined) / float64(s.Pipelines)
	}
	return fmt.Sprintf("direct=%d pipelines=%d pipelined=%d (%.1f per pipeline)", s.Direct, s.Pipelines, s.Pipelined, avg)
}

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burstResult counts the answers to a burst of requests.
type burstResult struct {
	allowed, limited int64
	other            map[int]int64 // any other status
	errs             []error
	elapsed          time.Duration
}

// burst sends n GET requests to urls (round robin) from workers goroutines
// at once, each with the header pairs hdr, and counts 200s and 429s.
func burst(t *testing.T, c *http.Client, urls []string, n, workers int, hdr ...string) burstResult {
	t.Helper()
	var (
		next             atomic.Int64
		allowed, limited atomic.Int64
		mu               sync.Mutex
		res              = burstResult{other: make(map[int]int64)}
		wg               sync.WaitGroup
	)
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				status, err := quickGet(c, urls[int(i)%len(urls)], hdr...)
				switch {
				case err != nil:
					mu.Lock()
					res.errs = append(res.errs, err)
					mu.Unlock()
				case status == http.StatusOK:
					allowed.Add(1)
				case status == http.StatusTooManyRequests:
					limited.Add(1)
				default:
					mu.Lock()
					res.other[status]++
					mu.Unlock()
				}
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.elapsed = time.Since(t0)
	res.allowed, res.limited = allowed.Load(), limited.Load()
	return res
}

// quickGet sends one GET and returns the status; safe to call from any
// goroutine (it never fails the test itself).
func quickGet(c *http.Client, url string, hdr ...string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return resp.StatusCode, nil
}

// countPath counts the requests an upstream received for path.
func countPath(u *upstream, path string) int {
	n := 0
	for _, s := range u.requests() {
		if s.Path == path {
			n++
		}
	}
	return n
}

// statuses sends n GETs to url one after another and returns the status
// codes.
func statuses(t *testing.T, c *http.Client, url string, n int, hdr ...string) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		resp, _ := get(t, c, url, hdr...)
		out[i] = resp.StatusCode
	}
	return out
}

// headerInt reads an integer response header, failing the test when it
// is missing or malformed.
func headerInt(t *testing.T, resp *http.Response, name string) int64 {
	t.Helper()
	v := resp.Header.Get(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s: got %q, want an integer", name, v)
	}
	return n
}

// redisInline sends one inline command to the Redis at addr and returns
// the first reply line.
func redisInline(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

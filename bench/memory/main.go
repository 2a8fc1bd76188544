// Command memory measures how the gateway's resident memory returns after
// bursts of load: it starts an upstream in this process and a Portico
// binary in front of it, reads the gateway's idle RSS, runs a burst, and
// samples RSS every second for 20 s after the burst ends.
//
//	go run ./bench/memory -portico bin/portico
//
// Scenarios: "cancel" (waves of concurrent requests with bodies to a slow
// upstream, each cancelled by its client after 300 ms) and "keys" (requests
// from 200,000 client addresses through X-Forwarded-For to a route with an
// in-memory per-address rate limit). It prints one line per scenario: idle
// RSS, peak RSS, RSS 15 s after the burst, and the difference from idle.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("portico", "bin/portico", "the Portico binary")
	waves := flag.Int("waves", 5, "cancel: waves of requests")
	conc := flag.Int("concurrency", 500, "cancel: concurrent requests per wave")
	bodySize := flag.Int("body", 2048, "cancel: request body bytes")
	keys := flag.Int("keys", 200000, "keys: distinct client addresses")
	flag.Parse()

	up, err := startUpstream()
	if err != nil {
		fail(err)
	}
	fmt.Println("scenario   idle_MiB  peak_MiB  after15s_MiB  above_idle_MiB")
	for _, sc := range []struct {
		name string
		yaml string
		load func(addr string)
	}{
		{"cancel", routeYAML(up, ""), func(addr string) { cancelBurst(addr, *waves, *conc, *bodySize) }},
		{"keys", routeYAML(up, "    plugins:\n      rate_limit: {limits: [{limit: 1000, window: 1s}], key: ip}\n"),
			func(addr string) { keyBurst(addr, *keys) }},
	} {
		if err := run(*bin, sc.name, sc.yaml, sc.load); err != nil {
			fail(fmt.Errorf("%s: %w", sc.name, err))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "memory:", err)
	os.Exit(1)
}

func routeYAML(up, plugins string) string {
	return fmt.Sprintf(`listen: ${BENCH_LISTEN}
admin: {listen: "off"}
trusted_proxies: ["127.0.0.1"]
services:
  - {name: up, url: %q}
routes:
  - name: up
    match: {paths: ["/"]}
    service: up
%s`, up, plugins)
}

// startUpstream serves /slow (answers after 3 s unless the request is
// cancelled) and everything else at once with 1 KiB.
func startUpstream() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	body := []byte(strings.Repeat("x", 1024))
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if strings.HasPrefix(r.URL.Path, "/slow") {
				select {
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
				}
			}
			_, _ = w.Write(body)
		}))
	}()
	return "http://" + ln.Addr().String(), nil
}

// run starts the gateway with yaml, measures one scenario and stops it.
func run(bin, name, yaml string, load func(addr string)) error {
	dir, err := os.MkdirTemp("", "portico-memory")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "portico.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "BENCH_LISTEN="+addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	if err := waitUp(addr); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	time.Sleep(2 * time.Second) // settle after start; the idle figure is the baseline
	idle := rss(pid)
	var peak atomic.Int64
	peak.Store(idle)
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if v := rss(pid); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	load(addr)
	stop()
	time.Sleep(15 * time.Second) // the window the bar allows after the burst
	after := rss(pid)
	fmt.Printf("%-9s  %8.1f  %8.1f  %12.1f  %14.1f\n", name, mib(idle), mib(peak.Load()), mib(after), mib(after-idle))
	return nil
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

// rss reads VmRSS of pid in KiB.
func rss(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func waitUp(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond) // waiting for another process to bind
	}
	return fmt.Errorf("the gateway did not listen on %s", addr)
}

// cancelBurst sends waves of concurrent requests with bodies to /slow,
// each cancelled by its client after 300 ms.
func cancelBurst(addr string, waves, conc, bodySize int) {
	body := strings.Repeat("y", bodySize)
	for range waves {
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/slow", strings.NewReader(body))
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
	}
}

// keyBurst sends one request from each of n client addresses.
func keyBurst(addr string, n int) {
	var next atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/k", nil)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
				if resp, err := c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
}

// Package telemetrytest reads a Telemetry's metrics in tests the way
// Prometheus does: from its handler, over a real HTTP server, in the text
// exposition format.
package telemetrytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/telemetry"
)

// Page is one scrape in the text exposition format.
type Page string

// Scrape returns what tel's handler serves, failing t unless it answers
// 200.
func Scrape(t testing.TB, tel *telemetry.Telemetry) Page {
	t.Helper()
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("get metrics: %s", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read metrics: %s", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get metrics: got status %d, want 200: %s", resp.StatusCode, body)
	}
	return Page(body)
}

// Value returns the value of the sample written exactly as series, such
// as `portico_cache_requests_total{result="hit",route="r"}` (labels in the
// exposition's order, sorted by name), and whether the page has it.
func (p Page) Value(series string) (float64, bool) {
	for line := range strings.SplitSeq(string(p), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// Sum adds the samples of the family name whose labels include every
// pair in match, each written as in the exposition (`route="r"`).
func (p Page) Sum(name string, match ...string) float64 {
	sum := 0.0
	for line := range strings.SplitSeq(string(p), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n, labels, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		labels = "," + strings.TrimSuffix(labels, "}") + ","
		all := true
		for _, m := range match {
			all = all && strings.Contains(labels, ","+m+",")
		}
		if v, err := strconv.ParseFloat(value, 64); all && err == nil {
			sum += v
		}
	}
	return sum
}

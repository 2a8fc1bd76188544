package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a real upstream for the cache tests. It counts what it serves
// and answers every request with a JSON body unique to that request:
//
//	{"n": N, "uri": "...", "consumer": X-Consumer-Name, "auth": Authorization, "lang": Accept-Language}
//
// The response's caching headers come from the query, so each test case is
// its own URL (and so its own cache key):
//
//	cc=VALUE     Cache-Control: VALUE ("none": no Cache-Control; default "public, max-age=60")
//	exp=SECONDS  Expires: now + SECONDS (negative: in the past)
//	cookie=1     Set-Cookie: session=...
//	vary=NAME    Vary: NAME
//	etag=TAG     ETag: "TAG", and 304 to a request whose If-None-Match has it
//	status=CODE  the status of a GET
//	hold=1       answer only once the test calls release
//
// A request header X-Status sets the status of any request (a failing
// POST).
type origin struct {
	n       atomic.Int64
	up      *upstream
	hold    chan struct{}
	release func() // lets the held requests answer; idempotent
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{hold: make(chan struct{})}
	o.release = sync.OnceFunc(func() { close(o.hold) })
	o.up = newUpstream(t, "origin", o.serve)
	t.Cleanup(o.release) // before the server closes: it waits for its handlers
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	n := o.n.Add(1)
	q := r.URL.Query()
	if q.Get("hold") == "1" {
		select {
		case <-o.hold:
		case <-r.Context().Done():
		}
	}
	h := w.Header()
	switch cc := q.Get("cc"); cc {
	case "":
		h.Set("Cache-Control", "public, max-age=60")
	case "none":
	default:
		h.Set("Cache-Control", cc)
	}
	if s := q.Get("exp"); s != "" {
		secs, _ := strconv.Atoi(s)
		h.Set("Expires", time.Now().Add(time.Duration(secs)*time.Second).UTC().Format(http.TimeFormat))
	}
	if q.Get("cookie") == "1" {
		h.Set("Set-Cookie", fmt.Sprintf("session=s%d; Path=/", n))
	}
	if v := q.Get("vary"); v != "" {
		h.Set("Vary", v)
	}
	if tag := q.Get("etag"); tag != "" {
		h.Set("ETag", strconv.Quote(tag))
		if strings.Contains(r.Header.Get("If-None-Match"), strconv.Quote(tag)) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	status := http.StatusOK
	if s, err := strconv.Atoi(q.Get("status")); err == nil && r.Method == http.MethodGet {
		status = s
	}
	if s, err := strconv.Atoi(r.Header.Get("X-Status")); err == nil {
		status = s
	}
	b, _ := json.Marshal(map[string]any{
		"n": n, "uri": r.RequestURI, "consumer": r.Header.Get("X-Consumer-Name"),
		"auth": r.Header.Get("Authorization"), "lang": r.Header.Get("Accept-Language"),
	})
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// count returns how many requests with method and request URI uri the
// origin received.
func (o *origin) count(method, uri string) int {
	n := 0
	for _, s := range o.up.requests() {
		if s.Method == method && s.URI == uri {
			n++
		}
	}
	return n
}

// cachedBody is the part of an origin body the tests compare.
type cachedBody struct {
	N        int64  `json:"n"`
	URI      string `json:"uri"`
	Consumer string `json:"consumer"`
	Auth     string `json:"auth"`
}

func decodeCached(t *testing.T, b []byte) cachedBody {
	t.Helper()
	var cb cachedBody
	if err := json.Unmarshal(b, &cb); err != nil {
		t.Fatalf("body is not the origin's JSON: %s; body %q", err, b)
	}
	return cb
}

// The Cache-Status (RFC 9211) forms the tests recognise.
var cacheTTL = regexp.MustCompile(`;\s*ttl=(-?\d+)`)

func isHit(resp *http.Response) bool {
	return strings.Contains(resp.Header.Get("Cache-Status"), "; hit")
}

func isMiss(resp *http.Response) bool {
	return strings.Contains(resp.Header.Get("Cache-Status"), "fwd=miss")
}

// isStale reports whether the response is a stored one served stale: the
// Cache-Status says "stale" or has a negative ttl.
func isStale(resp *http.Response) bool {
	cs := resp.Header.Get("Cache-Status")
	if strings.Contains(cs, "stale") {
		return true
	}
	m := cacheTTL.FindStringSubmatch(cs)
	return m != nil && strings.HasPrefix(m[1], "-")
}

// purge calls the admin API's POST /cache/purge and returns "purged".
func purge(t *testing.T, g *gw, body string) int {
	t.Helper()
	resp, err := http.Post(g.AdminURL("/cache/purge"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /cache/purge %s: %s", body, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /cache/purge %s: got %d, want 200; body %s", body, resp.StatusCode, b)
	}
	var out struct {
		Purged *int `json:"purged"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Purged == nil {
		t.Fatalf("POST /cache/purge %s: got %s, want {\"purged\": N}", body, b)
	}
	return *out.Purged
}

// coalesced reads the gateway's portico_cache_coalesced_total for route:
// the requests that waited for another request fetching the same response.
func coalesced(t *testing.T, g *gw, route string) int {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %s", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	re := regexp.MustCompile(`(?m)^portico_cache_coalesced_total\{route="` + regexp.QuoteMeta(route) + `"\} (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0 // not counted yet
	}
	n, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("portico_cache_coalesced_total: %s", err)
	}
	return int(n)
}

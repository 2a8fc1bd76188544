package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/telemetry"
)

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		output  string
		wantErr string
	}{
		{"stdout", "stdout", ""},
		{"stderr", "stderr", ""},
		{"file", "/var/log/portico/access.log", ""},
		{"empty", "", "plugins.access_log.output: must not be empty"},
		{"blank", "  ", "plugins.access_log.output: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Spec{Output: tt.output}
			err := s.Validate(config.Path{}.Key("plugins").Key("access_log"))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %s, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	reg := Registration()
	if reg.Name != "access_log" || reg.Phase != pipeline.PhaseObserve || !reg.Global {
		t.Errorf("got %s/%d/global=%t, want access_log/%d/global=true", reg.Name, reg.Phase, reg.Global, pipeline.PhaseObserve)
	}
	if got := reg.Spec().(*Spec).Output; got != "stdout" {
		t.Errorf("default output: got %q, want stdout", got)
	}
	if _, err := reg.Build(reg.Spec(), &pipeline.BuildEnv{}); err == nil {
		t.Errorf("build without sinks: got no error, want one")
	}
	sinks := telemetry.NewSinks(io.Discard, io.Discard)
	defer sinks.Close()
	bad := &Spec{Output: filepath.Join(t.TempDir(), "missing", "a.log")}
	if _, err := reg.Build(bad, &pipeline.BuildEnv{Sinks: sinks}); err == nil {
		t.Errorf("build with an unopenable file: got no error, want one")
	}
}

// edge stands in for the gateway's edge: it creates the Exchange and keeps
// Status and BytesOut up to date, as the real edge does.
func edge(start time.Time, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{Start: start, ClientIP: netip.MustParseAddr("203.0.113.7"), RequestID: "req-1"}
		h.ServeHTTP(&statusWriter{ResponseWriter: w, ex: ex}, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	ex *pipeline.Exchange
}

func (w *statusWriter) WriteHeader(code int) {
	if w.ex.Status == 0 {
		w.ex.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.ex.Status == 0 {
		w.ex.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.ex.BytesOut += int64(n)
	return n, err
}

// newLogged builds the plugin over a file sink and returns the handler
// (wrapped in the test edge) and a function returning the logged lines.
func newLogged(t *testing.T, start time.Time, next http.Handler) (http.Handler, func() []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	sinks := telemetry.NewSinks(io.Discard, io.Discard)
	t.Cleanup(func() { _ = sinks.Close() })
	reg := Registration()
	mw, err := reg.Build(&Spec{Output: path}, &pipeline.BuildEnv{Sinks: sinks})
	if err != nil {
		t.Fatalf("build: %s", err)
	}
	lines := func() []string {
		t.Helper()
		if err := sinks.Flush(); err != nil {
			t.Fatalf("flush: %s", err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read log: %s", err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	return edge(start, mw(next)), lines
}

// decodeOrdered returns the keys of a JSON object line in order, and its
// values.
func decodeOrdered(t *testing.T, line string) ([]string, map[string]any) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line is not valid JSON: %s\n%s", err, line)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip any
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys, m
}

func TestAccessLogLine(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 4, 5, 6, 7, 891_500_000, time.FixedZone("X", 3600))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		n, _ := io.Copy(io.Discard, r.Body)
		ex.BytesIn = n
		ex.Route, ex.Service, ex.Upstream = "orders", "orders-svc", "127.0.0.1:3001"
		ex.UpstreamDuration = 2500 * time.Microsecond
		ex.Err = errors.New(`upstream said "no"`)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("hello"))
	})
	h, lines := newLogged(t, start, next)
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/orders/a%2Fb?api_key=abc&page=2&Token=t0k&x=%3Cy%3E", strings.NewReader("0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example"
	req.Header.Set("Authorization", "Bearer sekrit-bearer")
	req.Header.Set("Cookie", "session=sekrit-cookie")
	req.Header.Set("X-Api-Key", "sekrit-header")
	req.Header.Set("User-Agent", `curl/8 "quoted"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	got := lines()
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(got), strings.Join(got, "\n"))
	}
	line := got[0]
	for _, secret := range []string{"sekrit", "abc", "t0k", "Authorization", "Cookie"} {
		if strings.Contains(line, secret) {
			t.Errorf("line contains %q:\n%s", secret, line)
		}
	}
	keys, m := decodeOrdered(t, line)
	wantKeys := []string{"time", "request_id", "client_ip", "method", "host", "path", "query", "proto",
		"route", "service", "upstream", "status", "bytes_in", "bytes_out", "duration_ms", "upstream_ms",
		"user_agent", "error"}
	if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("keys:\n got %v\nwant %v", keys, wantKeys)
	}
	want := map[string]any{
		"time":        "2026-03-04T04:06:07.891Z",
		"request_id":  "req-1",
		"client_ip":   "203.0.113.7",
		"method":      "POST",
		"host":        "api.example",
		"path":        "/api/orders/a%2Fb",
		"query":       "api_key=[redacted]&page=2&Token=[redacted]&x=%3Cy%3E",
		"proto":       "HTTP/1.1",
		"route":       "orders",
		"service":     "orders-svc",
		"upstream":    "127.0.0.1:3001",
		"status":      float64(201),
		"bytes_in":    float64(10),
		"bytes_out":   float64(5),
		"upstream_ms": 2.5,
		"user_agent":  `curl/8 "quoted"`,
		"error":       `upstream said "no"`,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: got %#v, want %#v", k, m[k], v)
		}
	}
	if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms: got %#v, want a non-negative number", m["duration_ms"])
	}
	if !strings.Contains(line, `"upstream_ms":2.500,`) {
		t.Errorf("got %s, want upstream_ms with 3 decimals", line)
	}
}

func TestAccessLogDefaultsAndOmissions(t *testing.T) {
	t.Parallel()
	start := time.Now().Add(-1500 * time.Millisecond)
	// A handler that writes nothing: net/http answers 200.
	h, lines := newLogged(t, start, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	line := lines()[0]
	keys, m := decodeOrdered(t, line)
	for _, k := range keys {
		if k == "upstream_ms" || k == "error" {
			t.Errorf("got key %s, want it omitted:\n%s", k, line)
		}
	}
	if m["status"] != float64(200) {
		t.Errorf("status: got %v, want 200", m["status"])
	}
	if d := m["duration_ms"].(float64); d < 1500 {
		t.Errorf("duration_ms: got %v, want at least 1500", d)
	}
	if m["query"] != "" || m["route"] != "" {
		t.Errorf("got query %q route %q, want both empty", m["query"], m["route"])
	}
}

func TestAccessLogPanicIsLoggedAndRepanicked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		next       http.HandlerFunc
		wantStatus float64
	}{
		{"abort after headers", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			panic(http.ErrAbortHandler)
		}, 200},
		{"panic before headers", func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, lines := newLogged(t, time.Now(), tt.next)
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
			}()
			if recovered != http.ErrAbortHandler {
				t.Errorf("got panic %v, want http.ErrAbortHandler to reach the edge", recovered)
			}
			_, m := decodeOrdered(t, lines()[0])
			if m["status"] != tt.wantStatus || m["error"] != "request aborted" {
				t.Errorf("got status %v error %v, want %v and \"request aborted\"", m["status"], m["error"], tt.wantStatus)
			}
		})
	}
}

func TestAccessLogWithoutExchangePassesThrough(t *testing.T) {
	t.Parallel()
	sinks := telemetry.NewSinks(io.Discard, io.Discard)
	defer sinks.Close()
	mw, err := Registration().Build(&Spec{Output: "stdout"}, &pipeline.BuildEnv{Sinks: sinks})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !called {
		t.Errorf("got next not called, want it called")
	}
}

func TestAppendQueryRedacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "page=2&sort=asc", "page=2&sort=asc"},
		{"api key", "api_key=abc&page=2", "api_key=[redacted]&page=2"},
		{"every word", "key=1&access_token=2&client_secret=3&password=4&passwd=5&signature=6&sig=7&auth=8&credentials=9&sessionid=10",
			"key=[redacted]&access_token=[redacted]&client_secret=[redacted]&password=[redacted]&passwd=[redacted]&signature=[redacted]&sig=[redacted]&auth=[redacted]&credentials=[redacted]&sessionid=[redacted]"},
		{"upper case", "API_KEY=abc", "API_KEY=[redacted]"},
		{"percent-encoded name", "%74oken=abc&%54OKEN=def", "%74oken=[redacted]&%54OKEN=[redacted]"},
		{"plus in name", "auth+code=abc", "auth+code=[redacted]"},
		{"semicolon separator", "a=1;token=abc", "a=1;token=[redacted]"},
		{"repeated", "token=a&token=b", "token=[redacted]&token=[redacted]"},
		{"empty value", "token=", "token=[redacted]"},
		{"value with equals", "token=a=b&x=1", "token=[redacted]&x=1"},
		{"no value", "token&x=1", "token&x=1"},
		{"empty segments", "&&x=1&", "&&x=1&"},
		{"sensitive value, plain name", "q=password", "q=password"},
		{"long name", strings.Repeat("a", 100) + "=v", strings.Repeat("a", 100) + "=[redacted]"},
		{"bad escape kept", "%zz=1&%7=2", "%zz=1&%7=2"},
		{"json escaping", `q="\` + "\x01", `q=\"\\\u0001`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(appendQuery(nil, tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendEscaped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "abc/def", "abc/def"},
		{"quote and backslash", `a"b\c`, `a\"b\\c`},
		{"newlines", "a\nb\rc\td", `a\nb\rc\td`},
		{"control", "\x00\x1f", `\u0000\u001f`},
		{"utf-8 kept", "café ✓", "café ✓"},
		{"invalid utf-8", "a\xffb", `a\ufffdb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(appendEscaped(nil, tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendTimeAndMillis(t *testing.T) {
	t.Parallel()
	ts := time.Date(987, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	if got, want := string(appendTime(nil, ts)), "0987-01-02T03:04:05.006Z"; got != want {
		t.Errorf("time: got %s, want %s", got, want)
	}
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000"},
		{-time.Second, "0.000"},
		{999 * time.Nanosecond, "0.000"},
		{1500 * time.Microsecond, "1.500"},
		{12*time.Second + 34*time.Microsecond, "12000.034"},
	}
	for _, tt := range tests {
		if got := string(appendMillis(nil, tt.d)); got != tt.want {
			t.Errorf("millis(%s): got %s, want %s", tt.d, got, tt.want)
		}
	}
}

// FuzzAppendQuery checks that any query yields a valid JSON string that
// never contains the value of a parameter named "token".
func FuzzAppendQuery(f *testing.F) {
	for _, s := range []string{"", "api_key=abc&page=2", "a=1;token=x", "%74oken=x", "\xff=\x00", `"=\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		b := append([]byte{'"'}, appendQuery(nil, q)...)
		b = append(b, '"')
		if !json.Valid(b) {
			t.Fatalf("invalid JSON for %q: %s", q, b)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("raw newline for %q", q)
		}
		const marker = "token=SECRETVALUE"
		if got := appendQuery(nil, q+"&"+marker); bytes.Contains(got, []byte("SECRETVALUE")) {
			t.Fatalf("secret leaked for %q: %s", q, got)
		}
	})
}

func benchRequest() (*http.Request, *pipeline.Exchange) {
	r := httptest.NewRequest(http.MethodGet, "http://api.example/api/orders/42?page=2&api_key=abc", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Benchmark/1.0")
	ex := &pipeline.Exchange{
		Start: time.Now(), RequestID: "0123456789abcdef0123456789abcdef",
		ClientIP: netip.MustParseAddr("203.0.113.7"), Route: "orders", Service: "orders",
		Upstream: "127.0.0.1:3001", UpstreamDuration: 1234 * time.Microsecond,
		Status: 200, BytesOut: 1024,
	}
	return r.WithContext(pipeline.NewContext(r.Context(), ex)), ex
}

func BenchmarkAppendLine(b *testing.B) {
	r, ex := benchRequest()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendLine(buf[:0], r, ex, ex.Start, 3*time.Millisecond, 200, "")
	}
}

func BenchmarkAccessLog(b *testing.B) {
	sinks := telemetry.NewSinks(io.Discard, io.Discard)
	defer sinks.Close()
	mw, err := Registration().Build(&Spec{Output: filepath.Join(b.TempDir(), "a.log")}, &pipeline.BuildEnv{Sinks: sinks})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r, _ := benchRequest()
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func TestSensitiveWordsAllMatch(t *testing.T) {
	t.Parallel()
	for _, w := range sensitiveWords {
		for _, name := range []string{w, "x_" + w + "_y", strings.ToUpper(w)} {
			if !sensitive(name) {
				t.Errorf("sensitive(%q): got false, want true", name)
			}
		}
	}
	for _, name := range []string{"page", "sort", "q", "id", "limit", "offset", "filter"} {
		if sensitive(name) {
			t.Errorf("sensitive(%q): got true, want false", name)
		}
	}
}

func TestSpecial8(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		for pos := range 8 {
			chunk := []byte("abcdefgh")
			chunk[pos] = byte(c)
			want := !plain[c]
			if got := special8(string(chunk)); want && !got {
				t.Errorf("special8 with %#x at %d: got false, want true", c, pos)
			}
		}
	}
	if special8("plain/ok") {
		t.Errorf("special8(%q): got true, want false", "plain/ok")
	}
}

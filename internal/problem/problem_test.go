package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gateway/portico/internal/pipeline"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		method string
		status int
		title  string
		detail string
		reqID  string
	}{
		{"default title", "GET", 404, "", "no route matches the request", "abc"},
		{"custom title", "POST", 502, "Upstream Down", "upstream connection failed", ""},
		{"escaping", "GET", 400, "", "bad \"path\" <script>\n\x01 \xff", "id-1"},
		{"head has no body", "HEAD", 503, "", "later", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/", nil)
			r = r.WithContext(pipeline.NewContext(r.Context(), &pipeline.Exchange{RequestID: tt.reqID}))
			w := httptest.NewRecorder()
			w.Header().Set("Content-Encoding", "gzip") // from an upstream: must not survive
			Write(w, r, tt.status, tt.title, tt.detail)
			if w.Code != tt.status {
				t.Errorf("got status %d, want %d", w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != ContentType {
				t.Errorf("got Content-Type %q, want %q", ct, ContentType)
			}
			if w.Header().Get("Content-Encoding") != "" {
				t.Error("got a Content-Encoding header on a problem body")
			}
			if tt.method == "HEAD" {
				if w.Body.Len() != 0 {
					t.Errorf("got a HEAD body %q, want none", w.Body)
				}
				return
			}
			var p map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not JSON: %v: %q", err, w.Body)
			}
			wantTitle := tt.title
			if wantTitle == "" {
				wantTitle = http.StatusText(tt.status)
			}
			if p["title"] != wantTitle || p["status"] != float64(tt.status) || p["type"] != "about:blank" {
				t.Errorf("got %v, want title %q status %d", p, wantTitle, tt.status)
			}
			if tt.reqID != "" && p["request_id"] != tt.reqID {
				t.Errorf("got request_id %v, want %q", p["request_id"], tt.reqID)
			}
			if tt.reqID == "" && p["request_id"] != nil {
				t.Errorf("got request_id %v, want none", p["request_id"])
			}
		})
	}
}

// TestRequestErrorsAreNeverCacheable: a 400, 413, 414 or 431 describes one
// client's request; it says no-store whatever caching fields were set
// before it was written (CPDoS). Other statuses keep a Cache-Control that
// was set.
func TestRequestErrorsAreNeverCacheable(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{http.StatusBadRequest, "no-store"},
		{http.StatusRequestEntityTooLarge, "no-store"},
		{http.StatusRequestURITooLong, "no-store"},
		{http.StatusRequestHeaderFieldsTooLarge, "no-store"},
		{http.StatusServiceUnavailable, "max-age=5"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			rec.Header().Set("Cache-Control", "max-age=5")
			rec.Header().Set("Surrogate-Control", "max-age=5")
			rec.Header().Set("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
			Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.status, "", "")
			if got := rec.Header().Get("Cache-Control"); got != tt.want {
				t.Errorf("got Cache-Control %q, want %q", got, tt.want)
			}
			if tt.want == "no-store" && (rec.Header().Get("Surrogate-Control") != "" || rec.Header().Get("Expires") != "") {
				t.Errorf("got Surrogate-Control %q Expires %q, want neither", rec.Header().Get("Surrogate-Control"), rec.Header().Get("Expires"))
			}
		})
	}
}

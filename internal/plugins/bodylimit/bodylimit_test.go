package bodylimit

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// readAll is a terminal handler that reads the body like the proxy does and
// answers 413 when the limit stops it.
func readAll(got *int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		*got = int(n)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name       string
		max        int64
		body       int
		chunked    bool
		wantStatus int
		wantRead   bool // whether the terminal handler ran
	}{
		{"under the limit", 100, 50, false, 200, true},
		{"at the limit", 100, 100, false, 200, true},
		{"declared length over the limit never reaches the upstream", 100, 101, false, 413, false},
		{"chunked over the limit stops while streaming", 100, 5000, true, 413, true},
		{"chunked under the limit", 100, 99, true, 200, true},
		{"no limit", 0, 1 << 20, true, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mw, err := build(&Spec{Max: config.ByteSize(tt.max)}, &pipeline.BuildEnv{})
			if err != nil {
				t.Fatal(err)
			}
			read := -1
			var h http.Handler = readAll(&read)
			if mw != nil {
				h = mw(h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.body))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", srv.URL, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if (read >= 0) != tt.wantRead {
				t.Errorf("got terminal ran=%v, want %v", read >= 0, tt.wantRead)
			}
			if tt.max > 0 && read > int(tt.max) {
				t.Errorf("got %d bytes read past the limit of %d", read, tt.max)
			}
		})
	}
}

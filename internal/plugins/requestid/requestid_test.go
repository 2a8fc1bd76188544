package requestid

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

func serve(t *testing.T, spec *Spec, reqHeader string) (resp, upstream, exchange string) {
	t.Helper()
	mw, err := build(spec, &pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream = r.Header.Get(spec.Header)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	if reqHeader != "" {
		r.Header.Set(spec.Header, reqHeader)
	}
	ex := &pipeline.Exchange{}
	r = r.WithContext(pipeline.NewContext(r.Context(), ex))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Header().Get(spec.Header), upstream, ex.RequestID
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		trust    bool
		incoming string
		wantKept bool
	}{
		{"generated when absent", true, "", false},
		{"kept when trusted and safe", true, "abc-123_X.y:z", true},
		{"replaced when not trusted", false, "abc-123", false},
		{"replaced when it carries a log injection", true, "a\"b", false},
		{"replaced when too long", true, string(make([]byte, 200)), false},
		{"replaced when it has spaces", true, "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := &Spec{Header: "X-Request-ID", TrustIncoming: tt.trust}
			resp, up, ex := serve(t, spec, tt.incoming)
			if resp == "" || resp != up || resp != ex {
				t.Fatalf("got response %q, upstream %q, exchange %q; want one id everywhere", resp, up, ex)
			}
			if kept := resp == tt.incoming; kept != tt.wantKept {
				t.Errorf("got id %q from incoming %q, want kept=%v", resp, tt.incoming, tt.wantKept)
			}
			if !tt.wantKept && len(resp) != 32 {
				t.Errorf("got generated id %q, want 32 hex digits", resp)
			}
		})
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := newID()
		if seen[id] {
			t.Fatalf("got duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestSpecValidate(t *testing.T) {
	if err := (&Spec{Header: "X Bad"}).Validate(config.Path{}.Key("plugins").Key("request_id")); err == nil {
		t.Error("got nil error for a header name with a space, want an error")
	}
	if err := (&Spec{Header: "X-Correlation-ID"}).Validate(config.Path{}); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func BenchmarkRequestID(b *testing.B) {
	mw, _ := build(&Spec{Header: "X-Request-ID", TrustIncoming: true}, &pipeline.BuildEnv{})
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		delete(r.Header, "X-Request-Id")
		h.ServeHTTP(w, r)
	}
}

package admin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPurge(t *testing.T) {
	t.Parallel()
	var got []PurgeRequest
	srv := httptest.NewServer(New(Options{Purge: func(req PurgeRequest) (int, error) {
		switch req.Route {
		case "ghost":
			return 0, &UnknownRouteError{Route: "ghost"}
		case "down":
			return 2, errors.New("redis: connection refused")
		}
		got = append(got, req)
		return 3, nil
	}}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, body string
		status             int
		want               string
	}{
		{"one url", "POST", `{"route":"products","url":"/api/products?category=books"}`, 200, `"purged": 3`},
		{"prefix", "POST", `{"route":"products","prefix":"/api/products"}`, 200, `"purged": 3`},
		{"route", "POST", `{"route":"products"}`, 200, `"purged": 3`},
		{"no route", "POST", `{"url":"/x"}`, 400, "route is required"},
		{"both", "POST", `{"route":"p","url":"/x","prefix":"/x"}`, 400, "not both"},
		{"relative url", "POST", `{"route":"p","url":"x"}`, 400, "starting with"},
		{"unknown field", "POST", `{"route":"p","path":"/x"}`, 400, "must be JSON"},
		{"not json", "POST", `purge everything`, 400, "must be JSON"},
		{"unknown route", "POST", `{"route":"ghost"}`, 404, "no route named ghost"},
		{"store down", "POST", `{"route":"down"}`, 502, "purge did not complete"},
		{"GET", "GET", ``, 405, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+"/cache/purge", strings.NewReader(tt.body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: got %d %s, want %d containing %q", tt.name, resp.StatusCode, body, tt.status, tt.want)
		}
	}
	if len(got) != 3 || got[0].URL != "/api/products?category=books" || got[1].Prefix != "/api/products" || got[2] != (PurgeRequest{Route: "products"}) {
		t.Fatalf("purge calls: %+v", got)
	}
}

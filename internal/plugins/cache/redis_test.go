package cache

import (
	"net/http"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/redistest"
)

// TestRedisSharedBetweenInstances: two gateways (separate shared state,
// one Redis) serve each other's stored responses, Vary variants included,
// and a purge on one is seen by the other.
func TestRedisSharedBetweenInstances(t *testing.T) {
	srv := redistest.Start(t)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	})
	store := &config.Store{Redis: &config.Redis{URL: config.Secret(srv.URL()), KeyPrefix: "t1:"}}
	a := startGateway(t, o, "store: redis\ncompress: true", gwOptions{store: store})
	b := startGateway(t, o, "store: redis", gwOptions{store: store})
	for _, lang := range []string{"en", "fr"} {
		if r := a.get(t, "/shared", "Accept-Language", lang, "Host", "api.example"); r.body != "lang="+lang {
			t.Fatalf("got %q, want lang=%s", r.body, lang)
		}
	}
	for _, lang := range []string{"fr", "en"} {
		r := b.get(t, "/shared", "Accept-Language", lang, "Host", "api.example")
		if r.body != "lang="+lang {
			t.Fatalf("got %q from the second instance, want lang=%s", r.body, lang)
		}
		wantStatus(t, r, "portico; hit")
	}
	wantHits(t, o, 2)
	n, err := Purge(b.shared, "r", "/shared", "", false)
	if err != nil || n != 3 {
		t.Fatalf("got %d %v, want the marker and two variants purged", n, err)
	}
	a.get(t, "/shared", "Accept-Language", "en", "Host", "api.example")
	wantHits(t, o, 3)
	// Redis gone: requests are still answered, as misses.
	srv.Stop()
	if r := a.get(t, "/shared", "Accept-Language", "en", "Host", "api.example"); r.status != 200 || r.body != "lang=en" {
		t.Fatalf("got %d %q with Redis down, want the upstream's answer", r.status, r.body)
	}
	wantHits(t, o, 4)
}

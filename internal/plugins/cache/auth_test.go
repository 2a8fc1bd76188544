package cache

import (
	"net/http"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
)

var testConsumers = []config.Consumer{
	{Name: "alice", Credentials: config.Credentials{APIKeys: []config.Secret{"alice-key"}}},
	{Name: "bob", Credentials: config.Credentials{APIKeys: []config.Secret{"bob-key"}}},
	{Name: "guest"},
}

// echoConsumer answers with the consumer the gateway named upstream.
func echoConsumer(cc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", cc)
		who := r.Header.Get("X-Consumer-Name")
		if who == "" {
			who = "nobody"
		}
		_, _ = w.Write([]byte(who))
	}
}

// TestAuthenticatedResponsesStayPrivate: a response to an authenticated
// request is never served to another consumer or to an anonymous client
// unless it is public or has s-maxage.
func TestAuthenticatedResponsesStayPrivate(t *testing.T) {
	type step struct{ key, want string }
	alice := step{"alice-key", "alice"}
	bob := step{"bob-key", "bob"}
	anon := step{"", "guest"}
	tests := []struct {
		name     string
		settings string
		cc       string
		steps    []step
		hits     int64
	}{
		{"bypass: never stored", "", "max-age=60",
			[]step{alice, bob, anon, alice, bob}, 5},
		{"bypass: anonymous responses shared among anonymous clients only", "", "max-age=60",
			[]step{anon, anon, alice, bob}, 3},
		{"per_consumer: each consumer its own entry", "authenticated: per_consumer", "max-age=60",
			[]step{alice, bob, anon, alice, bob, anon}, 3},
		{"public: shared with everyone", "", "public, max-age=60",
			[]step{alice, {"bob-key", "alice"}, {"", "alice"}}, 1},
		{"s-maxage: shared with everyone", "", "s-maxage=60",
			[]step{bob, {"alice-key", "bob"}, {"", "bob"}}, 1},
		{"anonymous answers are not served to consumers", "authenticated: per_consumer", "max-age=60",
			[]step{anon, alice, anon, alice}, 2},
		{"per_consumer: private never shared", "authenticated: per_consumer", "private, max-age=60",
			[]step{alice, alice, bob}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, echoConsumer(tt.cc))
			g := startGateway(t, o, tt.settings, gwOptions{keyAuth: true, anonymous: "guest", consumers: testConsumers})
			for i, s := range tt.steps {
				var r result
				if s.key != "" {
					r = g.get(t, "/me", "X-API-Key", s.key)
				} else {
					r = g.get(t, "/me")
				}
				if r.status != 200 || r.body != s.want {
					t.Fatalf("step %d: got %d %q (%s), want %q", i, r.status, r.body, r.cacheStatus(), s.want)
				}
			}
			wantHits(t, o, tt.hits)
		})
	}
}

// TestAuthorizationHeaderWithoutConsumer: a request carrying Authorization
// that no plugin checked is treated as authenticated (RFC 9111 §3.5).
func TestAuthorizationHeaderWithoutConsumer(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(r.Header.Get("Authorization")))
	})
	g := startGateway(t, o, "authenticated: per_consumer", gwOptions{})
	for _, tok := range []string{"Bearer a", "Bearer b", "Bearer a"} {
		if r := g.get(t, "/t", "Authorization", tok); r.body != tok {
			t.Fatalf("got %q, want %q", r.body, tok)
		}
	}
	if r := g.get(t, "/t"); r.body != "" {
		t.Fatalf("got %q for an anonymous client, want the anonymous answer", r.body)
	}
	wantHits(t, o, 4)
}

func TestPerConsumerInvalidation(t *testing.T) {
	o := newOrigin(t, echoConsumer("max-age=60"))
	g := startGateway(t, o, "authenticated: per_consumer", gwOptions{keyAuth: true, anonymous: "guest", consumers: testConsumers})
	g.get(t, "/me", "X-API-Key", "alice-key")
	g.get(t, "/me", "X-API-Key", "alice-key")
	wantHits(t, o, 1)
	g.do(t, http.MethodPost, "/me", "X-API-Key", "alice-key")
	g.get(t, "/me", "X-API-Key", "alice-key")
	wantHits(t, o, 3)
}

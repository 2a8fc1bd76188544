package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// poisonOrigin is an application that answers by everything an attacker
// can put in a request: the body, the query, cookies, credentials, and a
// method override header (as many frameworks obey X-HTTP-Method-Override).
// It says nothing about caching, so the route's default_ttl decides,
// except where the query asks for Set-Cookie or an error with explicit
// freshness:
//
//	setcookie=1  Set-Cookie: session=s<N>
//	strict=1     a 400 with Cache-Control: public, max-age=60 for an override
type poisonOrigin struct {
	n  atomic.Int64
	up *upstream
}

// poisonBody is what poisonOrigin answers.
type poisonBody struct {
	N        int64  `json:"n"`
	Method   string `json:"method"`
	Query    string `json:"query"`
	Body     string `json:"body"`
	Cookie   string `json:"cookie"`
	Auth     string `json:"auth"`
	Consumer string `json:"consumer"`
}

func newPoisonOrigin(t *testing.T) *poisonOrigin {
	t.Helper()
	o := &poisonOrigin{}
	o.up = newUpstream(t, "poison-origin", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := o.n.Add(1)
		q := r.URL.Query()
		method := r.Method
		if m := r.Header.Get("X-HTTP-Method-Override"); m != "" {
			method = m
		}
		if q.Get("setcookie") == "1" {
			w.Header().Set("Set-Cookie", fmt.Sprintf("session=s%d; Path=/", n))
		}
		if method != r.Method {
			if q.Get("strict") == "1" {
				w.Header().Set("Cache-Control", "public, max-age=60")
				http.Error(w, "unsupported override", http.StatusBadRequest)
				return
			}
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, _ := json.Marshal(poisonBody{N: n, Method: method, Query: r.URL.RawQuery, Body: string(body),
			Cookie: r.Header.Get("Cookie"), Auth: r.Header.Get("Authorization"), Consumer: r.Header.Get("X-Consumer-Name")})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return o
}

// count returns how many GETs of uri the origin received.
func (o *poisonOrigin) count(uri string) int {
	n := 0
	for _, s := range o.up.requests() {
		if s.Method == http.MethodGet && s.URI == uri {
			n++
		}
	}
	return n
}

// TestCachePoisoningAndDeception: with the cache settings docs/caching.md
// shows (default_ttl included), each attack is followed by an innocent
// request for the same URL, which must reach the origin or get a clean
// answer: a GET with a body, a method override header that makes the
// origin fail, an answer that sets a cookie, credentialed and cookie
// requests, and unkeyed query parameters. The gateway's edge may remove
// override headers before the cache sees them; the innocent answers are
// clean either way.
func TestCachePoisoningAndDeception(t *testing.T) {
	t.Parallel()
	o := newPoisonOrigin(t)
	settings := `{default_ttl: 60s, stale_while_revalidate: 30s, stale_if_error: 10m,
        query: {exclude: [utm_source, utm_medium, utm_campaign]}}`
	g := startGateway(t, base+fmt.Sprintf(`consumers:
  - name: alice
    credentials: {api_keys: ["alice-key-0123456789"]}
  - name: guest
services:
  - {name: svc, url: %q}
routes:
  - name: items
    match: {paths: ["/items"], methods: [GET, HEAD, POST]}
    service: svc
    plugins:
      cache: %s
  - name: keyed
    match: {paths: ["/keyed"]}
    service: svc
    plugins:
      key_auth: {}
      auth: {anonymous: guest}
      cache: %s
`, o.up.URL(), settings, settings))
	c := newClient(t)
	fetch := func(uri string, body io.Reader, hdr ...string) (*http.Response, poisonBody) {
		t.Helper()
		resp, b := do(t, c, http.MethodGet, g.URL(uri), body, hdr...)
		var pb poisonBody
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &pb); err != nil {
				t.Fatalf("GET %s: body is not the origin's JSON: %s; body %q", uri, err, b)
			}
		}
		return resp, pb
	}
	innocent := func(uri string) (*http.Response, poisonBody) {
		t.Helper()
		resp, pb := fetch(uri, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("innocent GET %s: got %d, want 200", uri, resp.StatusCode)
		}
		return resp, pb
	}

	t.Run("GET with a body", func(t *testing.T) {
		const uri = "/items/fat"
		if _, pb := fetch(uri, strings.NewReader("evil")); pb.Body != "evil" {
			t.Fatalf("attacker: got body %q upstream, want the body forwarded", pb.Body)
		}
		if _, pb := innocent(uri); pb.Body != "" {
			t.Errorf("innocent: got the answer to a request with body %q", pb.Body)
		}
		if got := o.count(uri); got != 2 {
			t.Errorf("origin GETs: got %d, want 2 (the attacker's answer not stored)", got)
		}
	})

	t.Run("method override makes the origin fail", func(t *testing.T) {
		for _, uri := range []string{"/items/override", "/items/override?strict=1"} {
			resp, _ := fetch(uri, nil, "X-HTTP-Method-Override", "DELETE")
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("attacker GET %s: got %d, want 405 or 400 from the origin (or 200 once the edge removes the header)", uri, resp.StatusCode)
			}
			if _, pb := innocent(uri); pb.Method != http.MethodGet {
				t.Errorf("innocent GET %s: got the answer to %s", uri, pb.Method)
			}
		}
	})

	t.Run("Set-Cookie under default_ttl", func(t *testing.T) {
		const uri = "/items/login?setcookie=1"
		first, _ := fetch(uri, nil)
		attackerCookie := first.Header.Get("Set-Cookie")
		if attackerCookie == "" {
			t.Fatal("first GET: got no Set-Cookie, want the origin's")
		}
		resp, _ := innocent(uri)
		if got := resp.Header.Get("Set-Cookie"); got == attackerCookie {
			t.Errorf("innocent: got the first client's Set-Cookie %q", got)
		}
		if got := o.count(uri); got != 2 {
			t.Errorf("origin GETs: got %d, want 2 (an answer with Set-Cookie is never stored)", got)
		}
	})

	t.Run("credentials under default_ttl", func(t *testing.T) {
		cases := []struct {
			name, uri string
			hdr       []string
			anonymous string // the consumer an innocent client is
		}{
			{"Cookie", "/items/account/settings.css", []string{"Cookie", "session=victim"}, ""},
			{"Authorization", "/items/account/profile.js", []string{"Authorization", "Bearer victim-token"}, ""},
			{"API key", "/keyed/account/avatar.png", []string{"X-API-Key", "alice-key-0123456789"}, "guest"},
		}
		for _, tc := range cases {
			_, victim := fetch(tc.uri, nil, tc.hdr...)
			if victim.Cookie == "" && victim.Auth == "" && victim.Consumer != "alice" {
				t.Fatalf("%s: the origin did not see the credential: %+v", tc.name, victim)
			}
			_, pb := innocent(tc.uri)
			if pb.N == victim.N || pb.Cookie != "" || pb.Auth != "" || pb.Consumer != tc.anonymous {
				t.Errorf("%s: innocent got %+v, want its own answer (the victim's was %+v)", tc.name, pb, victim)
			}
			// default_ttl still applies to what anonymous clients get.
			if _, again := innocent(tc.uri); again.N != pb.N {
				t.Errorf("%s: a second innocent GET got answer %d, want the stored %d", tc.name, again.N, pb.N)
			}
		}
	})

	t.Run("unkeyed query parameters", func(t *testing.T) {
		if _, pb := fetch("/items/search?q=shoes&utm_source=%3Cscript%3Ealert(1)%3C/script%3E", nil); pb.Query != "q=shoes" {
			t.Errorf("attacker: the origin got query %q, want q=shoes (utm_source is not in the key)", pb.Query)
		}
		if _, pb := innocent("/items/search?q=shoes"); pb.Query != "q=shoes" {
			t.Errorf("innocent: got the answer to query %q", pb.Query)
		}
	})
}

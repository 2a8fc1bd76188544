package forwardauth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/plugins/authtest"
)

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	const u = "url: http://auth.internal:9000/check\n"
	tests := []struct {
		name, src, want string
	}{
		{"minimal", u, ""},
		{"full", "url: https://auth.example.com/verify?app=shop\nmethod: POST\ntimeout: 2s\n" +
			"tls: {ca_file: /etc/ca.pem, server_name: auth.example.com, min_version: '1.3'}\n" +
			"request_headers: [Authorization, Cookie, X-Request-ID]\nforward_body: true\nmax_body: 64KiB\n" +
			"response_headers: [X-User-ID, X-User-Roles]\nconsumer_header: X-Consumer\n" +
			"client_headers: [WWW-Authenticate, Location]\nproblem_json: true\non_error: fail_open\n", ""},
		{"cache", u + "cache: {ttl: 30s, key: [Authorization], key_uri: true, max_entries: 500}", ""},
		{"url required", "timeout: 1s", "routes[0].plugins.forward_auth.url: is required"},
		{"relative url", "url: /check", "url: must be an absolute URL"},
		{"other scheme", "url: ftp://auth/check", "url: must be an http:// or https:// URL"},
		{"user info", "url: http://u:p@auth/check", "url: must not carry user info"},
		{"fragment", "url: 'http://auth/check#x'", "url: must not have a fragment"},
		{"bad method", u + "method: 'GE T'", "method: must be a method name"},
		{"connect", u + "method: CONNECT", "method: must not be CONNECT"},
		{"get with body", u + "method: GET\nforward_body: true", "method: cannot carry the body"},
		{"zero timeout", u + "timeout: 0s", "timeout: must be more than 0s and at most 1m"},
		{"long timeout", u + "timeout: 2m", "timeout: must be more than 0s and at most 1m"},
		{"tls on http", u + "tls: {ca_file: /etc/ca.pem}", "tls: is set but url is not https"},
		{"tls half pair", "url: https://a/check\ntls: {cert_file: /c.pem}", "tls: cert_file and key_file go together"},
		{"tls server name", "url: https://a/check\ntls: {server_name: 'a b'}", "tls.server_name: must be a DNS name"},
		{"tls version", "url: https://a/check\ntls: {min_version: '1.1'}", `tls.min_version: must be "1.2" or "1.3"`},
		{"no skip verify", "url: https://a/check\ntls: {insecure_skip_verify: true}", "insecure_skip_verify"},
		{"max body zero", u + "max_body: 0", "max_body: must be more than 0 and at most 16MiB"},
		{"max body large", u + "max_body: 32MiB", "max_body: must be more than 0 and at most 16MiB"},
		{"on_error", u + "on_error: ignore", "on_error: must be fail_closed or fail_open"},
		{"bad request header", u + "request_headers: ['X Bad']", "request_headers[0]: must be a header name"},
		{"duplicate request header", u + "request_headers: [Cookie, cookie]", "request_headers[1]: cookie is listed twice"},
		{"forwarding request header", u + "request_headers: [X-Forwarded-For]", "request_headers[0]: cannot be X-Forwarded-For: the gateway sets it"},
		{"framing request header", u + "request_headers: [Content-Length]", "request_headers[0]: cannot be Content-Length"},
		{"client response header", u + "response_headers: [Authorization]", "response_headers[0]: cannot be Authorization: clients send it"},
		{"forwarded response header", u + "response_headers: [x-real-ip]", "response_headers[0]: cannot be x-real-ip: the gateway sets it"},
		{"request and response header", u + "request_headers: [X-Session]\nresponse_headers: [X-Session]", "response_headers[0]: cannot be X-Session: request_headers forwards"},
		{"framing client header", u + "client_headers: [Transfer-Encoding]", "client_headers[0]: cannot be Transfer-Encoding"},
		{"consumer header", u + "consumer_header: 'X Consumer'", "consumer_header: must be a header name"},
		{"cache ttl", u + "cache: {ttl: 2h}", "cache.ttl: must be between 0s (no cache) and 1h"},
		{"cache entries", u + "cache: {ttl: 1m, max_entries: 0}", "cache.max_entries: must be between 1 and 1000000"},
		{"cache empty key", u + "cache: {ttl: 1m, key: []}", "cache.key: must name at least one header"},
		{"cache no request headers", u + "request_headers: []\ncache: {ttl: 1m}", "cache.key: must name at least one header"},
		{"cache with body", u + "forward_body: true\ncache: {ttl: 1m}", "cache.ttl: cannot be used with forward_body"},
		{"cache bad key", u + "cache: {ttl: 1m, key: ['a b']}", "cache.key[0]: must be a header name"},
		{"too many headers", u + "client_headers: [" + strings.Repeat("X-A,", 32) + "X-B]", "client_headers: must list at most 32 headers"},
		{"unknown key", u + "retries: 3", "retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authtest.TryConfigure(Registration(), tt.src)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %s, want no error", err.Error())
			case tt.want != "" && err == nil:
				t.Fatalf("got no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("got %s, want %q", err.Error(), tt.want)
			}
		})
	}
}

// TestSpecReportsEveryProblem: all problems at once, each located.
func TestSpecReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := authtest.TryConfigure(Registration(), "url: ftp://x\ntimeout: 0s\non_error: maybe\nresponse_headers: [Cookie]")
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{".url:", ".timeout:", ".on_error:", ".response_headers[0]:"} {
		if !strings.Contains(err.Error(), "routes[0].plugins.forward_auth"+want) {
			t.Errorf("got %s, want it to mention %s", err.Error(), want)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s := newSpec().(*Spec)
	if s.Timeout.D() != time.Second || s.OnError != FailClosed || s.ForwardBody || s.ProblemJSON ||
		s.Cache.TTL != 0 || s.Cache.MaxEntries != 10_000 || s.MaxBody != 1<<20 {
		t.Errorf("got %+v, want the documented defaults", s)
	}
	if got := strings.Join(s.RequestHeaders, ","); got != "Authorization,Cookie" {
		t.Errorf("got request_headers %s", got)
	}
	if got := strings.Join(s.keyHeaders(), ","); got != "Authorization,Cookie" {
		t.Errorf("got cache key %s, want request_headers", got)
	}
	if got := strings.Join(s.ClientHeaders, ","); got != "WWW-Authenticate,Location,Content-Type,Set-Cookie" {
		t.Errorf("got client_headers %s", got)
	}
}

func TestCacheFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		cc     string
		want   time.Duration
	}{
		{"200", 200, "", time.Minute},
		{"204", 204, "", time.Minute},
		{"401", 401, "", time.Minute},
		{"403", 403, "", time.Minute},
		{"302", 302, "", 0},
		{"404", 404, "", 0},
		{"no-store", 200, "private, no-store", 0},
		{"no-cache", 401, "No-Cache", 0},
		{"max-age shorter", 200, "max-age=5", 5 * time.Second},
		{"max-age longer", 200, "max-age=3600", time.Minute},
		{"max-age zero", 200, "max-age=0", 0},
		{"max-age quoted", 200, `max-age="7"`, 7 * time.Second},
		{"max-age unreadable", 200, "max-age=soon", 0},
		{"max-age huge", 200, "max-age=99999999999999999999", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.cc != "" {
			h.Set("Cache-Control", tt.cc)
		}
		if got := cacheFor(tt.status, h, time.Minute); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

package forwardauth

import (
	"errors"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Defaults and bounds.
const (
	defaultTimeout    = time.Second
	maxTimeout        = time.Minute
	defaultMaxBody    = 1 << 20  // 1 MiB
	maxMaxBody        = 16 << 20 // bodies are buffered in memory
	defaultMaxEntries = 10_000
	maxMaxEntries     = 1_000_000
	maxCacheTTL       = time.Hour
	maxAnswerBody     = 64 << 10 // refusal bodies passed on; larger ones are a 502
	maxAnswerHeader   = 64 << 10 // the transport's bound on an answer's header
	maxHeaderList     = 32       // names in one header list
)

// The on_error policies.
const (
	FailClosed = "fail_closed"
	FailOpen   = "fail_open"
)

// Spec configures forward_auth.
type Spec struct {
	// URL is the authorization service: an absolute http:// or https://
	// URL, called as it is (the original request's URI goes in
	// X-Forwarded-Uri). Required.
	URL string `yaml:"url"`
	// Method is the method of the call. Default "": the original
	// request's method.
	Method string `yaml:"method"`
	// Timeout bounds one call, from sending it to the end of the answer's
	// body. Default 1s, at most 1m.
	Timeout config.Duration `yaml:"timeout"`
	// TLS configures https calls like a service's tls block (ca_file,
	// server_name, cert_file and key_file for mutual TLS, min_version).
	// Default: the system roots, TLS 1.2 at least. Certificate checks
	// cannot be turned off.
	TLS *config.UpstreamTLS `yaml:"tls"`
	// RequestHeaders are the client request headers copied to the call.
	// Default [Authorization, Cookie].
	RequestHeaders []string `yaml:"request_headers"`
	// ForwardBody sends the request body with the call (buffered, then
	// passed on to the upstream unchanged). Default false.
	ForwardBody bool `yaml:"forward_body"`
	// MaxBody bounds the body forward_body buffers; a larger body is
	// refused with 413 without a call. Default 1MiB, at most 16MiB.
	MaxBody config.ByteSize `yaml:"max_body"`
	// ResponseHeaders are headers of an admitting (2xx) answer copied to
	// the upstream request. The gateway removes client-sent copies of them
	// on every route. Default none.
	ResponseHeaders []string `yaml:"response_headers"`
	// ConsumerHeader names a header of an admitting answer whose value is
	// the name of a configured consumer, who becomes the caller. An answer
	// without it, or naming no known consumer, is refused (403). Default
	// "": the caller has no consumer.
	ConsumerHeader string `yaml:"consumer_header"`
	// ClientHeaders are the headers of a refusing answer passed on to the
	// client with its status and body. Default [WWW-Authenticate,
	// Location, Content-Type, Set-Cookie].
	ClientHeaders []string `yaml:"client_headers"`
	// ProblemJSON answers refusals with the gateway's problem JSON and the
	// service's status instead of the service's own answer. Default false.
	ProblemJSON bool `yaml:"problem_json"`
	// OnError is what happens when the service cannot decide (timeout,
	// connection error, 5xx): "fail_closed" (default: 503 with
	// Retry-After) or "fail_open" (the request goes on unauthenticated).
	OnError string `yaml:"on_error"`
	// Cache keeps decisions for a while. Default: off.
	Cache Cache `yaml:"cache"`
}

// Cache configures the decision cache.
type Cache struct {
	// TTL is how long a decision is kept at most (less when the answer's
	// Cache-Control max-age says so). Default 0: no cache; at most 1h.
	TTL config.Duration `yaml:"ttl"`
	// Key are the request headers whose values key a decision. Default:
	// request_headers.
	Key []string `yaml:"key"`
	// KeyURI adds the method, host and URI of the request to the key, for
	// services whose decision depends on what is asked for. Default false.
	KeyURI bool `yaml:"key_uri"`
	// MaxEntries bounds the decisions kept for the route; the least
	// recently used go first. Default 10000, at most 1000000.
	MaxEntries int `yaml:"max_entries"`
}

var _ pipeline.Spec = (*Spec)(nil)

func newSpec() pipeline.Spec {
	return &Spec{
		Timeout:        config.Duration(defaultTimeout),
		RequestHeaders: []string{"Authorization", "Cookie"},
		MaxBody:        defaultMaxBody,
		ClientHeaders:  []string{"WWW-Authenticate", "Location", "Content-Type", "Set-Cookie"},
		OnError:        FailClosed,
		Cache:          Cache{MaxEntries: defaultMaxEntries},
	}
}

// keyHeaders returns the headers that key a decision and name the
// credential: cache.key, or request_headers.
func (s *Spec) keyHeaders() []string {
	if s.Cache.Key != nil {
		return s.Cache.Key
	}
	return s.RequestHeaders
}

// forwardingHeaders are set on the call by the gateway; no list may name
// them (X-Forwarded-For is the gateway's client address, never the
// client's own claim).
var forwardingHeaders = []string{
	"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-For",
	"X-Real-Ip", "Forwarded",
}

// framingHeaders are hop-by-hop or describe a message's framing: never
// copied from one message to another.
var framingHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Host", "Expect",
}

// clientRequestHeaders are headers clients send for their own reasons. As
// response_headers they would be removed from every client request on
// every route, so they are refused there.
var clientRequestHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Accept", "Accept-Charset", "Accept-Encoding",
	"Accept-Language", "Cache-Control", "Content-Encoding", "Content-Language", "Content-Type",
	"Content-Range", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
	"Origin", "Pragma", "Range", "Referer", "User-Agent", "X-Request-Id",
}

// Validate checks every field and returns all problems at once.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	https := false
	if msg := checkURL(s.URL); msg != "" {
		add(p.Key("url").Errorf("%s", msg))
	} else {
		https = strings.HasPrefix(strings.ToLower(s.URL), "https:")
	}
	if s.Method != "" {
		switch {
		case !httpsyntax.IsToken(s.Method):
			add(p.Key("method").Errorf("must be a method name like GET or POST"))
		case s.Method == "CONNECT":
			add(p.Key("method").Errorf("must not be CONNECT"))
		case s.ForwardBody && (s.Method == "GET" || s.Method == "HEAD"):
			add(p.Key("method").Errorf("cannot carry the body forward_body sends; use POST, or leave method out to use the request's"))
		}
	}
	if s.Timeout <= 0 || s.Timeout.D() > maxTimeout {
		add(p.Key("timeout").Errorf("must be more than 0s and at most 1m, like 1s"))
	}
	if s.TLS != nil {
		s.validateTLS(p.Key("tls"), https, add)
	}
	if s.MaxBody <= 0 || s.MaxBody > maxMaxBody {
		add(p.Key("max_body").Errorf("must be more than 0 and at most 16MiB"))
	}
	if s.OnError != FailClosed && s.OnError != FailOpen {
		add(p.Key("on_error").Errorf("must be fail_closed or fail_open"))
	}

	request := checkList(p.Key("request_headers"), s.RequestHeaders, add,
		exclude{forwardingHeaders, "the gateway sets it"},
		exclude{framingHeaders, "it describes the client's connection or message, not the request"})
	checkList(p.Key("response_headers"), s.ResponseHeaders, add,
		exclude{forwardingHeaders, "the gateway sets it"},
		exclude{framingHeaders, "it describes the answer's connection or message"},
		exclude{clientRequestHeaders, "clients send it: as an identity header it would be removed from every request on every route; use a name of your own, like X-Auth-User"},
		exclude{request, "request_headers forwards the client's copy, which the gateway removes from every request once response_headers sets it"})
	checkList(p.Key("client_headers"), s.ClientHeaders, add,
		exclude{framingHeaders, "it describes the answer's connection or message"})
	if s.ConsumerHeader != "" && !config.IsHeaderName(s.ConsumerHeader) {
		add(p.Key("consumer_header").Errorf("must be a header name like X-Consumer"))
	}
	s.validateCache(p.Key("cache"), add)
	return errors.Join(errs...)
}

func (s *Spec) validateTLS(p config.Path, https bool, add func(error)) {
	t := s.TLS
	if !https {
		add(p.Errorf("is set but url is not https"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		add(p.Errorf("cert_file and key_file go together: set both for mutual TLS, or neither"))
	}
	if t.ServerName != "" && !serverName(t.ServerName) {
		add(p.Key("server_name").Errorf("must be a DNS name"))
	}
	if t.MinVersion != "" && t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		add(p.Key("min_version").Errorf(`must be "1.2" or "1.3"`))
	}
}

func (s *Spec) validateCache(p config.Path, add func(error)) {
	c := &s.Cache
	if c.TTL < 0 || c.TTL.D() > maxCacheTTL {
		add(p.Key("ttl").Errorf("must be between 0s (no cache) and 1h"))
	}
	if c.MaxEntries < 1 || c.MaxEntries > maxMaxEntries {
		add(p.Key("max_entries").Errorf("must be between 1 and 1000000"))
	}
	if c.Key != nil {
		checkList(p.Key("key"), c.Key, add)
	}
	if c.TTL <= 0 {
		return
	}
	if len(s.keyHeaders()) == 0 {
		add(p.Key("key").Errorf("must name at least one header: without one every caller would share one decision"))
	}
	if s.ForwardBody {
		add(p.Key("ttl").Errorf("cannot be used with forward_body: the body is not part of the key"))
	}
}

// exclude is a set of header names a list may not hold, and why.
type exclude struct {
	names []string
	why   string
}

// checkList checks a list of header names: valid, each once, at most
// maxHeaderList, none of the excluded. It returns the canonical names.
func checkList(p config.Path, names []string, add func(error), excl ...exclude) []string {
	if len(names) > maxHeaderList {
		add(p.Errorf("must list at most %d headers", maxHeaderList))
	}
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for i, n := range names {
		if !config.IsHeaderName(n) {
			add(p.At(i).Errorf("must be a header name like X-User-ID"))
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(n)
		if seen[k] {
			add(p.At(i).Errorf("%s is listed twice", n))
			continue
		}
		seen[k] = true
		out = append(out, k)
		for _, e := range excl {
			if containsFold(e.names, k) {
				add(p.At(i).Errorf("cannot be %s: %s", n, e.why))
				break
			}
		}
	}
	return out
}

func containsFold(list []string, k string) bool {
	for _, v := range list {
		if strings.EqualFold(v, k) {
			return true
		}
	}
	return false
}

// checkURL returns what is wrong with the service URL, or "".
func checkURL(s string) string {
	if s == "" {
		return "is required"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL like http://auth.internal:9000/check"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an http:// or https:// URL"
	}
	if u.User != nil {
		return "must not carry user info; send credentials in request_headers"
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "must not have a fragment"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "must not contain spaces or control characters"
	}
	return ""
}

// serverName reports whether s is a DNS name or an IP address.
func serverName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-') {
				return false
			}
		}
	}
	return true
}

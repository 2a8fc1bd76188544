package forwardauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// client is the connection pool to one authorization service (its scheme,
// host and TLS settings). It never follows redirects: a redirect is the
// service's decision, passed on to the client. It lives in
// pipeline.Shared, so reloads keep its connections, and is closed when no
// config uses it any more.
type client struct {
	hc *http.Client
}

var _ io.Closer = (*client)(nil)

func newClient(tr *http.Transport) *client {
	return &client{hc: &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// Close drops the idle connections.
func (c *client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// clientFor returns the Shared client of spec's service, building its
// TLS config (and reading its files) now, so a missing or bad file fails
// the compile. The key covers the files' contents: a reload after a
// certificate was replaced gets a new pool.
func clientFor(shared *pipeline.Shared, spec *Spec) (*client, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil, errors.New("url: unusable")
	}
	key := "forward_auth:client:" + u.Scheme + "://" + u.Host
	tr := &http.Transport{
		Proxy:                  nil, // never the environment's proxy: the service is called directly
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    128,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		MaxResponseHeaderBytes: maxAnswerHeader,
		DisableCompression:     true, // refusal bodies are passed on as they came
	}
	if u.Scheme == "https" {
		cfg, err := upstream.ClientTLS(spec.TLS)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tr.TLSClientConfig = cfg
		fp, err := tlsFingerprint(spec.TLS)
		if err != nil {
			return nil, err
		}
		key += "|" + fp
	}
	return pipeline.Get(shared, pipeline.NewKey[*client](key), func() *client { return newClient(tr) }), nil
}

// tlsFingerprint identifies t's settings and the contents of its files.
func tlsFingerprint(t *config.UpstreamTLS) (string, error) {
	if t == nil {
		return "default", nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q|%q|", t.ServerName, t.MinVersion)
	for _, f := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path == "" {
			h.Write([]byte("-|"))
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return "", fmt.Errorf("tls: %s: %w", f.key, err)
		}
		sum := sha256.Sum256(b)
		h.Write(sum[:])
		h.Write([]byte("|"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// errStatus is a 5xx answer: the service could not decide.
type errStatus int

func (e errStatus) Error() string {
	return fmt.Sprintf("authorization service answered %d", int(e))
}

// errAnswerTooLarge is a refusal whose body exceeds maxAnswerBody.
var errAnswerTooLarge = errors.New("the refusal's body is larger than 64 KiB")

// errBadStatus is an answer with a status that is neither a decision nor
// an outage (1xx).
var errBadStatus = errors.New("the answer's status is not a decision")

// answer reads the service's answer into a decision. A 5xx is an error
// (an outage); so is an answer the gateway cannot pass on (a refusal
// over 64 KiB, a 1xx): errAnswerTooLarge and errBadStatus tell them apart.
func (h *handler) answer(resp *http.Response) (*decision, error) {
	st := resp.StatusCode
	switch {
	case st >= 200 && st <= 299:
		drain(resp.Body)
		d := &decision{admit: true}
		for _, k := range h.responseHeaders {
			if vs := resp.Header[k]; len(vs) > 0 {
				if d.headers == nil {
					d.headers = make(http.Header, len(h.responseHeaders))
				}
				d.headers[k] = slices.Clip(slices.Clone(vs))
			}
		}
		if h.consumerHeader != "" {
			if vs := resp.Header[h.consumerHeader]; len(vs) > 0 {
				d.consumer = strings.TrimSpace(vs[0])
			}
		}
		return d, nil
	case st >= 500:
		drain(resp.Body)
		return nil, errStatus(st)
	case st < 300 || st > 499:
		drain(resp.Body)
		return nil, errBadStatus
	}
	if h.problemJSON {
		drain(resp.Body)
		f := &pipeline.AuthFailure{Status: st, Detail: "the authorization service refused the request"}
		if st < 400 {
			f.Status = http.StatusUnauthorized // a redirect means nothing in problem JSON
		}
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			f.Challenge = c
		}
		return &decision{failure: f}, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(body) > maxAnswerBody {
		return nil, errAnswerTooLarge
	}
	out := &pipeline.Response{Status: st, Header: make(http.Header, len(h.clientHeaders)), Body: body}
	for _, k := range h.clientHeaders {
		if vs := resp.Header[k]; len(vs) > 0 {
			out.Header[k] = slices.Clone(vs)
		}
	}
	return &decision{failure: &pipeline.AuthFailure{Status: st, Response: out,
		Detail: "the authorization service refused the request"}}, nil
}

// drain reads what is left of a body, up to a bound, so that the
// connection can serve the next call.
func drain(b io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, maxAnswerBody))
}

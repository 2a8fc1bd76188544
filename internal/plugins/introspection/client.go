package introspection

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls one introspection endpoint over a keep-alive pool. It never
// follows redirects and reads at most maxResponseBytes of a response.
type client struct {
	hc *http.Client
}

func newClient() *client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	return &client{hc: &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// endpoint is what one call needs: where, as whom, and how long to wait.
type endpoint struct {
	url     string
	auth    string // "Basic " + base64(form-encoded id ":" form-encoded secret)
	timeout time.Duration
}

// basicAuth encodes client_secret_basic credentials as RFC 6749 §2.3.1
// asks: each part form-encoded before base64.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString(
		[]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// errStatus is a non-200 answer from the endpoint.
type errStatus int

func (e errStatus) Error() string {
	return "introspection endpoint answered " + http.StatusText(int(e)) + fmt.Sprintf(" (%d)", int(e))
}

// introspect asks the endpoint about token. Errors never carry the token.
// ctx is not the client's request context: a client that goes away must
// not fail the other requests waiting on this call.
func (c *client) introspect(ctx context.Context, ep *endpoint, token string) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, ep.timeout)
	defer cancel()
	body := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, strings.NewReader(body))
	if err != nil {
		return nil, errors.New("introspection endpoint URL is unusable")
	}
	req.Header["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	req.Header["Accept"] = []string{"application/json"}
	req.Header["Authorization"] = []string{ep.auth}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged separately
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, errStatus(resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, errors.New("introspection response is larger than 1 MiB")
	}
	return parse(b)
}

// parse reads an RFC 7662 response. Only "active": true is active.
func parse(b []byte) (*result, error) {
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("introspection response is not a JSON object")
	}
	if d.More() {
		return nil, errors.New("introspection response has data after the JSON object")
	}
	r := &result{claims: claims}
	r.active, _ = claims["active"].(bool)
	if !r.active {
		return &result{}, nil // nothing of an inactive token is kept
	}
	r.subject, _ = claims["sub"].(string)
	if r.subject == "" {
		r.subject, _ = claims["username"].(string)
	}
	if id, _ := claims["client_id"].(string); id != "" {
		r.credential = "introspection:" + id
	} else {
		r.credential = "introspection:" + r.subject
	}
	if sc, _ := claims["scope"].(string); sc != "" {
		r.scopes = strings.Fields(sc)
	}
	r.issuer, _ = claims["iss"].(string)
	switch aud := claims["aud"].(type) {
	case string:
		r.audience = []string{aud}
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok {
				r.audience = append(r.audience, s)
			}
		}
	}
	if exp, ok := claims["exp"].(float64); ok && exp > 0 && exp < 1<<40 {
		sec := int64(exp)
		r.exp = time.Unix(sec, int64((exp-float64(sec))*1e9))
	}
	return r, nil
}

// Package staple keeps OCSP responses (RFC 6960) for the certificates the
// gateway serves, so that each TLS handshake carries a fresh, signed
// statement that the certificate is not revoked (OCSP stapling, RFC 6066
// status_request): clients need not ask the CA themselves.
//
// A State follows one certificate whose leaf names an OCSP responder (its
// Authority Information Access) and whose chain holds the issuer:
//
//	New ──Refresh (fetch, verify)──▶ good response kept ──halfway to NextUpdate──▶ Refresh ...
//	                │ failure                    ▲
//	                └── backoff (1m doubling, at most 1h), the last good
//	                    response stays stapled until its NextUpdate
//
// A response is stapled only when it parses, its signature verifies
// against the issuer (or a responder the issuer delegated to), it is about
// this certificate, its status is good and it has not expired. A revoked
// or unknown status removes the staple at once. Stapled returns the
// certificate to serve at a given time: with the staple while it is
// valid, without it otherwise.
//
// A State has no goroutine of its own: its owner (a TLS listener for
// certificate files, the ACME manager for its certificates) calls Refresh
// when Next comes, from one goroutine.
package staple

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// The refresh schedule.
const (
	// minRefresh is the shortest wait between two fetches of one
	// certificate's response.
	minRefresh = time.Second
	// retryMin and retryMax bound the wait after a failed fetch.
	retryMin = time.Minute
	retryMax = time.Hour
	// noNextUpdate is how often a response without NextUpdate is renewed.
	noNextUpdate = time.Hour
	// maxResponse bounds the size of an OCSP response.
	maxResponse = 1 << 20
	// fetchTimeout bounds one fetch.
	fetchTimeout = 10 * time.Second
)

// ErrNotGood is returned by Refresh for a response whose status is
// revoked or unknown.
var ErrNotGood = errors.New("ocsp: the certificate's status is not good")

// State is the staple of one certificate. Its methods are not safe for
// concurrent use: its owner calls them from one goroutine, and publishes
// what Stapled returns.
type State struct {
	cert   *tls.Certificate // as loaded, without a staple
	leaf   *x509.Certificate
	issuer *x509.Certificate
	url    string

	der      []byte // the last good response; nil for none
	resp     *ocsp.Response
	next     time.Time // when to fetch again
	failures int
}

// New returns the staple state of cert, or nil when cert cannot be
// stapled: its leaf names no OCSP responder, or its chain lacks the
// issuer.
func New(cert *tls.Certificate) *State {
	if cert == nil || len(cert.Certificate) < 2 {
		return nil
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil
		}
	}
	if len(leaf.OCSPServer) == 0 {
		return nil
	}
	issuer, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		return nil
	}
	return &State{cert: cert, leaf: leaf, issuer: issuer, url: leaf.OCSPServer[0]}
}

// Fingerprint identifies the certificate a State is for (the SHA-256 of
// its leaf), so an owner can carry a State over to the same certificate
// loaded again.
func (s *State) Fingerprint() [32]byte { return sha256.Sum256(s.leaf.Raw) }

// Responder is the URL of the OCSP responder.
func (s *State) Responder() string { return s.url }

// Next is when Refresh should run next: halfway through the last good
// response's validity, after a backoff when the last fetch failed, and no
// later than the expiry of the staple in use. The zero time means now.
func (s *State) Next() time.Time {
	n := s.next
	if s.resp != nil && !s.resp.NextUpdate.IsZero() && s.resp.NextUpdate.Before(n) {
		n = s.resp.NextUpdate
	}
	return n
}

// Refresh fetches a new response with hc and keeps it when it is good.
// On failure the last good response is kept (Stapled stops stapling it
// once it expires) and the next attempt is backed off; a response that
// says revoked or unknown drops the staple. now is the current time.
func (s *State) Refresh(ctx context.Context, hc *http.Client, now time.Time) error {
	der, resp, err := s.fetch(ctx, hc, now)
	switch {
	case err == nil:
		s.der, s.resp, s.failures = der, resp, 0
		s.next = now.Add(noNextUpdate)
		if !resp.NextUpdate.IsZero() {
			s.next = resp.ThisUpdate.Add(resp.NextUpdate.Sub(resp.ThisUpdate) / 2)
		}
		s.next = later(s.next, now.Add(minRefresh))
		return nil
	case errors.Is(err, ErrNotGood):
		s.der, s.resp = nil, nil
	}
	s.failures++
	wait := retryMin << min(s.failures-1, 10)
	s.next = now.Add(min(wait, retryMax))
	return err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// fetch asks the responder and verifies the answer.
func (s *State) fetch(ctx context.Context, hc *http.Client, now time.Time) ([]byte, *ocsp.Response, error) {
	req, err := ocsp.CreateRequest(s.leaf, s.issuer, &ocsp.RequestOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(req))
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	hr.Header.Set("Accept", "application/ocsp-response")
	res, err := hc.Do(hr)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp fetch: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("ocsp fetch: responder answered %d", res.StatusCode)
	}
	der, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp fetch: %w", err)
	}
	if len(der) > maxResponse {
		return nil, nil, errors.New("ocsp fetch: response too large")
	}
	resp, err := Verify(der, s.leaf, s.issuer, now)
	if err != nil {
		return nil, nil, err
	}
	return der, resp, nil
}

// Verify parses der as an OCSP response for leaf, checks its signature
// against issuer (directly or through a responder certificate the issuer
// signed), and that it is good and current at now. Only a response that
// passes may be stapled.
func Verify(der []byte, leaf, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return nil, fmt.Errorf("ocsp response: %w", err)
	}
	const skew = 5 * time.Minute // clocks of responders drift
	switch {
	case resp.Status != ocsp.Good:
		return nil, fmt.Errorf("%w (status %d)", ErrNotGood, resp.Status)
	case resp.ThisUpdate.After(now.Add(skew)):
		return nil, errors.New("ocsp response: thisUpdate is in the future")
	case !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate):
		return nil, errors.New("ocsp response: expired (nextUpdate has passed)")
	}
	return resp, nil
}

// Stapled returns the certificate to serve at now: a copy with the last
// good response stapled while that response is valid, else the
// certificate as loaded.
func (s *State) Stapled(now time.Time) *tls.Certificate {
	if s.der == nil || (!s.resp.NextUpdate.IsZero() && !now.Before(s.resp.NextUpdate)) {
		return s.cert
	}
	c := *s.cert
	c.OCSPStaple = s.der
	return &c
}

// Adopt takes over old's response and schedule when both are for the
// same certificate, so a certificate loaded again (a config reload) keeps
// its staple without a new fetch. It reports whether it did.
func (s *State) Adopt(old *State) bool {
	if old == nil || old.Fingerprint() != s.Fingerprint() {
		return false
	}
	s.der, s.resp, s.next, s.failures = old.der, old.resp, old.next, old.failures
	return true
}

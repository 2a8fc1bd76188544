package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// ChallengePath is the path prefix of HTTP-01 challenges (RFC 8555 §8.3).
const ChallengePath = "/.well-known/acme-challenge/"

// ALPNProto is the ALPN protocol of TLS-ALPN-01 challenges (RFC 8737).
const ALPNProto = "acme-tls/1"

// lookupTimeout bounds a storage lookup for a challenge answer.
const lookupTimeout = 2 * time.Second

// errNoChallenge is returned for a TLS-ALPN-01 handshake for a name with
// no pending challenge.
var errNoChallenge = errors.New("acme: no pending tls-alpn-01 challenge for this name")

// Challenges answers the ACME challenges of every manager of the running
// config, on every listener: HTTP-01 on plain listeners, TLS-ALPN-01 on
// TLS listeners. A reload replaces the managers with Set; the listeners
// keep the same Challenges.
type Challenges struct {
	managers atomic.Pointer[[]*Manager]
}

// Set makes ms the managers whose challenges are answered.
func (c *Challenges) Set(ms []*Manager) { c.managers.Store(&ms) }

func (c *Challenges) list() []*Manager {
	if p := c.managers.Load(); p != nil {
		return *p
	}
	return nil
}

// ServeHTTP01 answers r when it asks for the key authorization of a
// pending HTTP-01 challenge, and reports whether it did; other requests
// under the challenge path are left to the router (an ACME client of an
// upstream may answer them).
func (c *Challenges) ServeHTTP01(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePath)
	if !ok || !validToken(token) {
		return false
	}
	for _, m := range c.list() {
		if ka, ok := m.http01Answer(r.Context(), token); ok {
			w.Header()["Content-Type"] = []string{"text/plain"}
			_, _ = w.Write([]byte(ka))
			return true
		}
	}
	return false
}

// TLSALPN01 returns the challenge certificate for a TLS-ALPN-01
// validation of name.
func (c *Challenges) TLSALPN01(name string) (*tls.Certificate, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, m := range c.list() {
		if m.byName[name] == nil {
			continue
		}
		if cert := m.alpnAnswer(name); cert != nil {
			return cert, nil
		}
	}
	return nil, errNoChallenge
}

// validToken reports whether t can be an ACME token (base64url), so that
// no other value reaches a storage key.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// http01Answer is the key authorization of token: from this instance's
// orders, else from storage (another instance's order).
func (m *Manager) http01Answer(ctx context.Context, token string) (string, bool) {
	m.mu.Lock()
	ka, ok := m.http01[token]
	m.mu.Unlock()
	if ok {
		return ka, true
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	b, err := m.store.Get(ctx, m.http01Key(token))
	if err != nil {
		return "", false
	}
	return string(b), true
}

// alpnAnswer is the challenge certificate for domain: this instance's,
// else one built from the token another instance stored, with the
// shared account key.
func (m *Manager) alpnAnswer(domain string) *tls.Certificate {
	m.mu.Lock()
	cert := m.alpn[domain]
	m.mu.Unlock()
	if cert != nil {
		return cert
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	token, err := m.store.Get(ctx, m.alpnKey(domain))
	if err != nil || !validToken(string(token)) {
		return nil
	}
	key, err := m.accountKey(ctx, false)
	if err != nil {
		return nil
	}
	c, err := newClient(key, m.set.Directory, m.acmeHC).TLSALPN01ChallengeCert(string(token), domain)
	if err != nil {
		return nil
	}
	return &c
}

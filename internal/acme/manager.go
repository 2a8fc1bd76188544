// Package acme obtains and renews TLS certificates from an ACME
// certificate authority (RFC 8555, such as Let's Encrypt) with
// golang.org/x/crypto/acme, answers the authority's HTTP-01 and
// TLS-ALPN-01 challenges, and staples OCSP responses to what it obtained.
//
// A Manager looks after the domains of one listener's tls.acme, one
// certificate per domain. It is long-lived state (kept in pipeline.Shared,
// so a reload keeps it) and does its work in Run, which the gateway starts
// once the listeners are open; nothing waits for it, so an unreachable
// authority never holds the gateway's start:
//
//	start: read each domain's certificate from storage ──▶ serve it
//	loop, per domain, when due (no certificate, renewal time, retry time):
//	    storage has a fresh one (another instance renewed)? ──▶ serve it
//	    take the domain's lock ── held by another instance ──▶ look again in 2s
//	    order: authorize (HTTP-01 or TLS-ALPN-01) → finalize → store → serve
//	    failure: back off (1m doubling, at most 6h), logged and counted
//
// A certificate is renewed renew_before its expiry, or at half its
// lifetime when that comes later (short-lived certificates). The account
// key, the certificates and the locks are in a Storage: a directory, or
// Redis when store.redis is configured, so that N instances share one
// account and one certificate per domain and only one of them orders it.
// The challenge answers are stored too, so whichever instance the
// authority reaches can answer.
package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/staple"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// The schedule of the manager.
const (
	// backoffMin and backoffMax bound the wait after a failed order.
	backoffMin = time.Minute
	backoffMax = 6 * time.Hour
	// lockWait is how often an instance that finds a domain locked by
	// another looks for the other's result.
	lockWait = 2 * time.Second
	// lockTTL bounds how long a lock outlives a crashed holder; it is
	// longer than orderTimeout.
	lockTTL = 10 * time.Minute
	// orderTimeout bounds one order, from authorization to certificate.
	orderTimeout = 5 * time.Minute
	// challengeTTL is how long a stored challenge answer lives.
	challengeTTL = 15 * time.Minute
	// idleCheck is the longest the loop sleeps: it looks at storage at
	// least this often.
	idleCheck = time.Hour
)

// Options configure a Manager.
type Options struct {
	// Settings are the listener's tls.acme, defaults applied.
	Settings *config.ACME
	// Storage keeps the account, certificates, challenges and locks.
	Storage Storage
	// Logger receives what the manager does (nil: discarded).
	Logger *slog.Logger
	// Orders counts orders by result.
	Orders telemetry.ACMEOrders
	// HTTPClient reaches OCSP responders (nil: a client with a timeout).
	HTTPClient *http.Client
	// CA is the content of Settings.CAFile (see ReadCA); nil trusts the
	// system roots.
	CA []byte
}

// Manager obtains, renews and serves the certificates of one tls.acme.
type Manager struct {
	set    config.ACME
	store  Storage
	log    *slog.Logger
	orders telemetry.ACMEOrders
	acmeHC *http.Client // to the ACME server (ca_file)
	ocspHC *http.Client
	ns     string // storage namespace of the directory
	now    func() time.Time

	domains []*Domain
	byName  map[string]*Domain

	mu     sync.Mutex
	client *xacme.Client // registered, once an order needed it
	key    *ecdsa.PrivateKey
	http01 map[string]string           // token → key authorization, of this instance's orders
	alpn   map[string]*tls.Certificate // domain → challenge certificate

	wake   chan struct{}
	resync atomic.Bool
}

// Domain is one domain's certificate, as served.
type Domain struct {
	name string
	cur  atomic.Pointer[tls.Certificate]

	// Owned by Run.
	leaf     *x509.Certificate
	staple   *staple.State
	failures int
	retryAt  time.Time
	gone     bool // storage lost the certificate: order a new one
}

// Name is the domain.
func (d *Domain) Name() string { return d.name }

// Certificate returns the certificate to serve for the domain, nil until
// one is obtained.
func (d *Domain) Certificate() *tls.Certificate { return d.cur.Load() }

// New returns a manager for o.Settings. It contacts no one: Run does.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hc, err := acmeHTTPClient(o.CA, o.Settings.CAFile)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		set: *o.Settings, store: o.Storage, log: o.Logger, orders: o.Orders,
		acmeHC: hc, ocspHC: o.HTTPClient, ns: Namespace(o.Settings.Directory), now: time.Now,
		byName: make(map[string]*Domain), http01: make(map[string]string), alpn: make(map[string]*tls.Certificate),
		wake: make(chan struct{}, 1),
	}
	if m.ocspHC == nil {
		m.ocspHC = &http.Client{Timeout: 15 * time.Second}
	}
	for _, name := range o.Settings.Domains {
		d := &Domain{name: name}
		m.domains = append(m.domains, d)
		m.byName[name] = d
	}
	return m, nil
}

// ReadCA reads tls.acme.ca_file ("" reads nothing).
func ReadCA(caFile string) ([]byte, error) {
	if caFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("acme ca_file: %w", err)
	}
	return b, nil
}

// acmeHTTPClient is the client to the ACME server: the system roots, or
// only the certificates of pem (read from caFile).
func acmeHTTPClient(pem []byte, caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pem != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme ca_file %s: no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// Namespace is the storage prefix of an ACME directory: its host and path,
// so the accounts and certificates of two authorities never mix.
func Namespace(directory string) string {
	u, err := url.Parse(directory)
	if err != nil {
		return "invalid"
	}
	s := u.Host + u.Path
	return strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, s), "_")
}

// Storage keys.
func (m *Manager) certKey(domain string) string  { return m.ns + "/certs/" + domain + ".pem" }
func accountKey(ns string) string                { return ns + "/account.key" }
func (m *Manager) lockKey(name string) string    { return m.ns + "/locks/" + name }
func (m *Manager) http01Key(token string) string { return m.ns + "/challenges/http-01/" + token }
func (m *Manager) alpnKey(domain string) string  { return m.ns + "/challenges/tls-alpn-01/" + domain }

// Domain returns the domain's certificate handle, nil for a name the
// manager does not obtain.
func (m *Manager) Domain(name string) *Domain { return m.byName[name] }

// Domains returns every domain's handle, in the config's order.
func (m *Manager) Domains() []*Domain { return m.domains }

// Resync makes Run read every domain's certificate from storage again
// (after a reload: a certificate revoked and deleted with `portico certs
// revoke` is ordered again).
func (m *Manager) Resync() {
	m.resync.Store(true)
	m.kick()
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run serves the stored certificates, then orders, renews and staples
// until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	for _, d := range m.domains {
		m.load(ctx, d)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if m.resync.Swap(false) {
			for _, d := range m.domains {
				m.load(ctx, d)
			}
		}
		next := m.now().Add(idleCheck)
		for _, d := range m.domains {
			if ctx.Err() != nil {
				return
			}
			if m.due(d) {
				m.maintain(ctx, d)
			} else if d.leaf == nil || d.gone {
				m.loadLogged(ctx, d, false) // another instance may have obtained it meanwhile
			}
			if d.staple != nil && !m.now().Before(d.staple.Next()) {
				if err := d.staple.Refresh(ctx, m.ocspHC, m.now()); err != nil && ctx.Err() == nil {
					m.log.Warn("ocsp staple refresh failed", "domain", d.name, "responder", d.staple.Responder(),
						"error", err, "retry_at", d.staple.Next())
				}
				m.publish(d)
			}
			if t := m.nextCheck(d); t.Before(next) {
				next = t
			}
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// renewAt is when d's certificate is renewed: renew_before its expiry,
// or at half its lifetime when that is later.
func (m *Manager) renewAt(leaf *x509.Certificate) time.Time {
	at := leaf.NotAfter.Add(-m.set.RenewBefore.D())
	half := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if half.After(at) {
		return half
	}
	return at
}

// due reports whether d needs work now: no certificate or a lost one, or
// its renewal time has come, unless a retry is pending.
func (m *Manager) due(d *Domain) bool {
	now := m.now()
	if now.Before(d.retryAt) {
		return false
	}
	return d.leaf == nil || d.gone || !now.Before(m.renewAt(d.leaf))
}

// nextCheck is when d needs looking at again.
func (m *Manager) nextCheck(d *Domain) time.Time {
	t := d.retryAt
	if d.leaf != nil && !d.gone {
		if r := m.renewAt(d.leaf); r.After(t) {
			t = r
		}
	}
	if d.staple != nil && d.staple.Next().Before(t) {
		t = d.staple.Next()
	}
	if d.leaf == nil || d.gone {
		// Without a certificate, look at storage often: an instance
		// sharing it may obtain one while this one waits for its retry.
		if soon := m.now().Add(lockWait); soon.Before(t) {
			t = soon
		}
	}
	return t
}

// load reads d's certificate from storage and serves it when it is newer
// than the one served; a missing one marks d for a new order.
func (m *Manager) load(ctx context.Context, d *Domain) bool { return m.loadLogged(ctx, d, true) }

// loadLogged is load; with warn false a storage error is logged at debug
// level only (the frequent look of an instance waiting for another).
func (m *Manager) loadLogged(ctx context.Context, d *Domain, warn bool) bool {
	b, err := m.store.Get(ctx, m.certKey(d.name))
	if errors.Is(err, fs.ErrNotExist) {
		d.gone = d.leaf != nil
		return false
	}
	if err != nil {
		lvl := slog.LevelWarn
		if !warn {
			lvl = slog.LevelDebug
		}
		m.log.Log(ctx, lvl, "acme storage read failed", "domain", d.name, "error", err)
		return false
	}
	cert, err := parseBundle(b)
	if err != nil {
		m.log.Error("stored certificate unusable; ordering a new one", "domain", d.name, "error", err)
		d.gone = true
		return false
	}
	if d.leaf != nil && !cert.Leaf.NotAfter.After(d.leaf.NotAfter) && cert.Leaf.SerialNumber.Cmp(d.leaf.SerialNumber) == 0 {
		d.gone = false
		return true // the one served
	}
	m.adopt(d, cert)
	m.log.Info("certificate loaded from storage", "domain", d.name, "serial", cert.Leaf.SerialNumber.Text(16),
		"not_after", cert.Leaf.NotAfter)
	return true
}

// adopt serves cert for d and sets up its staple.
func (m *Manager) adopt(d *Domain, cert *tls.Certificate) {
	d.leaf, d.gone = cert.Leaf, false
	d.staple = staple.New(cert)
	if d.staple == nil {
		d.cur.Store(cert)
		return
	}
	m.publish(d)
}

func (m *Manager) publish(d *Domain) { d.cur.Store(d.staple.Stapled(m.now())) }

// maintain brings d's certificate up to date: from storage when another
// instance already did, else by ordering under d's lock.
func (m *Manager) maintain(ctx context.Context, d *Domain) {
	if m.load(ctx, d) && !m.due(d) {
		return
	}
	release, err := m.store.TryLock(ctx, m.lockKey(d.name), lockTTL)
	if errors.Is(err, errLocked) {
		m.log.Debug("another instance is ordering the certificate; waiting for it", "domain", d.name)
		d.retryAt = m.now().Add(lockWait)
		return
	}
	if err != nil {
		m.fail(d, err)
		return
	}
	defer release()
	// The holder before us may have finished just now.
	if m.load(ctx, d) && !m.due(d) {
		return
	}
	renewal := d.leaf != nil
	octx, cancel := context.WithTimeout(ctx, orderTimeout)
	defer cancel()
	cert, err := m.order(octx, d.name)
	if err != nil {
		if ctx.Err() == nil {
			m.fail(d, err)
		}
		return
	}
	m.orders.OK.Inc()
	d.failures, d.retryAt = 0, time.Time{}
	m.adopt(d, cert)
	m.log.Info("certificate obtained", "domain", d.name, "renewal", renewal,
		"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter, "renew_at", m.renewAt(cert.Leaf))
}

// fail records a failed order of d and schedules the retry.
func (m *Manager) fail(d *Domain, err error) {
	m.orders.Failed.Inc()
	d.failures++
	wait := Backoff(d.failures)
	d.retryAt = m.now().Add(wait)
	m.log.Warn("acme order failed", "domain", d.name, "error", err, "failures", d.failures, "retry_in", wait.String(),
		"serving", d.leaf != nil && !d.gone)
}

// Backoff is the wait after the n-th consecutive failed order of a
// domain: one minute, doubling, at most six hours.
func Backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	return min(backoffMin<<min(n-1, 20), backoffMax)
}

// order obtains a certificate for domain: account, authorization with one
// of the enabled challenges, finalization with a new P-256 key; it
// stores the result.
func (m *Manager) order(ctx context.Context, domain string) (*tls.Certificate, error) {
	client, err := m.account(ctx)
	if err != nil {
		return nil, err
	}
	o, err := client.AuthorizeOrder(ctx, xacme.DomainIDs(domain))
	if err != nil {
		return nil, fmt.Errorf("new order: %w", err)
	}
	for _, zurl := range o.AuthzURLs {
		if err := m.authorize(ctx, client, zurl); err != nil {
			return nil, err
		}
	}
	o, err = client.WaitOrder(ctx, o.URI)
	if err != nil {
		return nil, fmt.Errorf("wait for order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{domain}}, key)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	chain, _, err := client.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalize order: %w", err)
	}
	bundle, err := encodeBundle(key, chain)
	if err != nil {
		return nil, err
	}
	cert, err := parseBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	if err := cert.Leaf.VerifyHostname(domain); err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	if err := m.store.Put(ctx, m.certKey(domain), bundle, 0); err != nil {
		return nil, err
	}
	return cert, nil
}

// authorize completes one authorization with the first challenge type
// of the settings that the authority offers.
func (m *Manager) authorize(ctx context.Context, client *xacme.Client, zurl string) error {
	z, err := client.GetAuthorization(ctx, zurl)
	if err != nil {
		return fmt.Errorf("get authorization: %w", err)
	}
	if z.Status == xacme.StatusValid {
		return nil
	}
	var chal *xacme.Challenge
	for _, typ := range m.set.Challenges {
		for _, c := range z.Challenges {
			if c.Type == typ && chal == nil {
				chal = c
			}
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization of %s: the authority offers none of the enabled challenges %v", z.Identifier.Value, m.set.Challenges)
	}
	cleanup, err := m.provision(ctx, client, z.Identifier.Value, chal)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("accept %s challenge: %w", chal.Type, err)
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s challenge: %w", chal.Type, err)
	}
	return nil
}

// provision makes the answer to chal available on this instance and in
// storage (for the others), and returns what removes it.
func (m *Manager) provision(ctx context.Context, client *xacme.Client, domain string, chal *xacme.Challenge) (func(), error) {
	switch chal.Type {
	case config.ChallengeHTTP01:
		ka, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.http01[chal.Token] = ka
		m.mu.Unlock()
		if err := m.store.Put(ctx, m.http01Key(chal.Token), []byte(ka), challengeTTL); err != nil {
			m.log.Warn("acme challenge not shared with other instances", "error", err)
		}
		return func() {
			m.mu.Lock()
			delete(m.http01, chal.Token)
			m.mu.Unlock()
			_ = m.store.Delete(context.WithoutCancel(ctx), m.http01Key(chal.Token))
		}, nil
	default: // tls-alpn-01
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, domain)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.alpn[domain] = &cert
		m.mu.Unlock()
		if err := m.store.Put(ctx, m.alpnKey(domain), []byte(chal.Token), challengeTTL); err != nil {
			m.log.Warn("acme challenge not shared with other instances", "error", err)
		}
		return func() {
			m.mu.Lock()
			delete(m.alpn, domain)
			m.mu.Unlock()
			_ = m.store.Delete(context.WithoutCancel(ctx), m.alpnKey(domain))
		}, nil
	}
}

// account returns a client with the registered account, creating the
// account key (under a lock, so instances share one) the first time.
func (m *Manager) account(ctx context.Context) (*xacme.Client, error) {
	m.mu.Lock()
	c := m.client
	m.mu.Unlock()
	if c != nil {
		return c, nil
	}
	key, err := m.accountKey(ctx, true)
	if err != nil {
		return nil, err
	}
	c = newClient(key, m.set.Directory, m.acmeHC)
	acct := &xacme.Account{}
	if m.set.Email != "" {
		acct.Contact = []string{"mailto:" + m.set.Email}
	}
	if _, err := c.Register(ctx, acct, xacme.AcceptTOS); err != nil && !errors.Is(err, xacme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("register account: %w", err)
	}
	m.mu.Lock()
	m.client = c
	m.mu.Unlock()
	return c, nil
}

// accountKey returns the account key from storage; with create, it makes
// one when there is none.
func (m *Manager) accountKey(ctx context.Context, create bool) (*ecdsa.PrivateKey, error) {
	m.mu.Lock()
	key := m.key
	m.mu.Unlock()
	if key != nil {
		return key, nil
	}
	key, err := loadAccountKey(ctx, m.store, m.ns)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err = m.createAccountKey(ctx)
	}
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.key = key
	m.mu.Unlock()
	return key, nil
}

func (m *Manager) createAccountKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	for {
		release, err := m.store.TryLock(ctx, m.lockKey("account"), lockTTL)
		if errors.Is(err, errLocked) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(lockWait):
			}
			if key, err := loadAccountKey(ctx, m.store, m.ns); err == nil {
				return key, nil
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		defer release()
		if key, err := loadAccountKey(ctx, m.store, m.ns); err == nil {
			return key, nil
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := m.store.Put(ctx, accountKey(m.ns), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0); err != nil {
			return nil, err
		}
		m.log.Info("acme account key created", "directory", m.set.Directory)
		return key, nil
	}
}

func loadAccountKey(ctx context.Context, s Storage, ns string) (*ecdsa.PrivateKey, error) {
	b, err := s.Get(ctx, accountKey(ns))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("acme account key: not PEM")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("acme account key: %w", err)
	}
	return key, nil
}

// newClient is an ACME client that gives up on a failing server after
// two quick retries (the manager's own backoff takes over).
func newClient(key *ecdsa.PrivateKey, directory string, hc *http.Client) *xacme.Client {
	return &xacme.Client{
		Key: key, DirectoryURL: directory, HTTPClient: hc, UserAgent: "portico",
		RetryBackoff: func(n int, _ *http.Request, res *http.Response) time.Duration {
			if n > 2 {
				return -1
			}
			if res != nil {
				if s := res.Header.Get("Retry-After"); s != "" {
					if d, err := time.ParseDuration(s + "s"); err == nil && d <= 10*time.Second {
						return d
					}
				}
			}
			return time.Duration(n) * time.Second
		},
	}
}

// encodeBundle is the stored form of a certificate: its private key and
// its chain, leaf first, in one PEM file, so they are replaced together.
func encodeBundle(key *ecdsa.PrivateKey, chain [][]byte) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out, nil
}

// parseBundle reads a stored certificate.
func parseBundle(b []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, fmt.Errorf("stored certificate: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

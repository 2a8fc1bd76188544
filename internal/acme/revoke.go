package acme

import (
	"context"
	"crypto/x509"
	"fmt"

	xacme "golang.org/x/crypto/acme"

	"github.com/portico-gateway/portico/internal/config"
)

// Revoked describes a certificate Revoke revoked.
type Revoked struct {
	Domain string
	Serial string // hexadecimal
}

// Revoke asks the authority of set to revoke domain's stored certificate,
// signed with the stored account key, and deletes the certificate from
// storage so that running gateways order a new one (at their next reload,
// or their next check). It needs no running gateway.
func Revoke(ctx context.Context, set *config.ACME, store Storage, domain string) (*Revoked, error) {
	ns := Namespace(set.Directory)
	key, err := loadAccountKey(ctx, store, ns)
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	m := &Manager{ns: ns}
	b, err := store.Get(ctx, m.certKey(domain))
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", domain, err)
	}
	cert, err := parseBundle(b)
	if err != nil {
		return nil, err
	}
	ca, err := ReadCA(set.CAFile)
	if err != nil {
		return nil, err
	}
	hc, err := acmeHTTPClient(ca, set.CAFile)
	if err != nil {
		return nil, err
	}
	if err := newClient(key, set.Directory, hc).RevokeCert(ctx, nil, cert.Certificate[0], xacme.CRLReasonUnspecified); err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	if err := store.Delete(ctx, m.certKey(domain)); err != nil {
		return nil, fmt.Errorf("revoked, but not deleted from storage: %w", err)
	}
	return &Revoked{Domain: domain, Serial: serialHex(cert.Leaf)}, nil
}

func serialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

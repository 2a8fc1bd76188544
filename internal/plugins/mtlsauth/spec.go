package mtlsauth

import (
	"errors"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// The values of forward.
const (
	ForwardNone    = "none"
	ForwardHeaders = "headers"
	ForwardRFC9440 = "rfc9440"
)

// Spec configures mtls_auth.
type Spec struct {
	// Match lists the certificate fields tried, in order, to find the
	// consumer: sha256 (the fingerprint of the DER certificate), san_uri,
	// san_dns, subject_cn. The first field that names a consumer decides.
	// Default: all four in that order.
	Match []string `yaml:"match"`
	// Forward says how the verified certificate is told to the upstream:
	// "none" (default), "headers" (X-Client-Cert-Subject, -Issuer,
	// -Serial, -Fingerprint, -SAN-URI, -SAN-DNS) or "rfc9440"
	// (Client-Cert and Client-Cert-Chain).
	Forward string `yaml:"forward"`
}

var _ pipeline.Spec = (*Spec)(nil)

// DefaultSpec returns the defaults: every field, the most specific first;
// nothing forwarded.
func DefaultSpec() *Spec {
	return &Spec{Match: slices.Clone(config.CertFields), Forward: ForwardNone}
}

// Validate checks the fields and the forward mode.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if len(s.Match) == 0 {
		errs = append(errs, p.Key("match").Errorf("must list at least one of %s", strings.Join(config.CertFields, ", ")))
	}
	for i, f := range s.Match {
		switch {
		case !slices.Contains(config.CertFields, f):
			errs = append(errs, p.Index("match", i).Errorf("unknown field %q; use %s", f, strings.Join(config.CertFields, ", ")))
		case slices.Index(s.Match, f) < i:
			errs = append(errs, p.Index("match", i).Errorf("%s is listed twice", f))
		}
	}
	switch s.Forward {
	case ForwardNone, ForwardHeaders, ForwardRFC9440:
	default:
		errs = append(errs, p.Key("forward").Errorf(`must be "none", "headers" or "rfc9440"`))
	}
	return errors.Join(errs...)
}

package iprestriction

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// DefaultMessage is the detail of the 403 answer when the config sets none.
const DefaultMessage = "your address is not allowed"

// maxMessage bounds message, which is written into every refusal.
const maxMessage = 1024

// Spec configures ip_restriction. At least one of Allow and Deny is set.
type Spec struct {
	// Allow lists the client addresses that may use the route: IPv4 or
	// IPv6 addresses ("192.0.2.7") or CIDR ranges ("10.0.0.0/8",
	// "2001:db8::/32"). When set, every other address is refused.
	Allow []string `yaml:"allow"`
	// Deny lists client addresses that are refused, in the same forms.
	// Deny wins over Allow.
	Deny []string `yaml:"deny"`
	// Message is the detail of the 403 problem response. Default
	// "your address is not allowed"; at most 1024 bytes.
	Message string `yaml:"message"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate requires at least one non-empty list and checks every entry.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if len(s.Allow) == 0 && len(s.Deny) == 0 {
		errs = append(errs, p.Errorf("set allow or deny (or both): a list of IP addresses or CIDR ranges"))
	}
	for i, e := range s.Allow {
		if _, err := parseEntry(e); err != nil {
			errs = append(errs, p.Index("allow", i).Errorf("%s", err.Error()))
		}
	}
	for i, e := range s.Deny {
		if _, err := parseEntry(e); err != nil {
			errs = append(errs, p.Index("deny", i).Errorf("%s", err.Error()))
		}
	}
	if len(s.Message) > maxMessage {
		errs = append(errs, p.Key("message").Errorf("must be at most %d bytes", maxMessage))
	}
	return errors.Join(errs...)
}

// parseEntry reads one list entry: an address (a one-address range) or a
// CIDR range without host bits. IPv4-mapped IPv6 entries become IPv4, so
// they compare with client addresses, which are always unmapped.
func parseEntry(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("must not be empty: write an IP address or a CIDR range")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New(strconv.Quote(s) + " has an IPv6 zone; zones are not allowed")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errNotAddress(s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errNotAddress(s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, errors.New(strconv.Quote(s) + " has bits set past the /" + strconv.Itoa(pfx.Bits()) +
			" prefix: write " + strconv.Quote(m.String()) + " for the range, or " +
			strconv.Quote(pfx.Addr().String()) + " for the one address")
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx, nil
}

func errNotAddress(s string) error {
	return errors.New(strconv.Quote(s) +
		" is not an IP address or CIDR range (such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32)")
}

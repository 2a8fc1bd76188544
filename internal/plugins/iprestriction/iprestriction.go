// Package iprestriction implements the ip_restriction plugin: it admits or
// refuses a request by the client address alone, before CORS,
// authentication or anything else looks at it.
//
// The address is the Exchange's ClientIP, which the gateway's edge resolves
// from the TCP peer and, only when the peer is a trusted proxy, from
// X-Forwarded-For; no header is read here. The decision:
//
//	in deny                      → 403
//	allow set and not in allow   → 403
//	otherwise                    → pass
//
// An IPv4-mapped IPv6 address (::ffff:192.0.2.7) is compared as IPv4. A
// request whose address is unknown is refused. Build compiles both lists
// into sorted, merged ranges per address family, so a lookup is a binary
// search that costs the same for ten entries or ten thousand and allocates
// nothing.
package iprestriction

import (
	"net/http"
	"net/netip"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's config key.
const Name = "ip_restriction"

// Registration declares the ip_restriction pipeline. It is Global: set in
// the top-level plugins, it also refuses requests that match no route, so
// a refused address cannot probe which routes exist.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:   Name,
		Phase:  pipeline.PhaseIPRestriction,
		Spec:   func() pipeline.Spec { return &Spec{} },
		Build:  build,
		Global: true,
	}
}

// policy is a compiled allow/deny decision.
type policy struct {
	allow, deny addrSet
}

// compile parses and merges the lists of a validated Spec.
func compile(s *Spec) (*policy, error) {
	allow, err := parseAll(s.Allow)
	if err != nil {
		return nil, err
	}
	deny, err := parseAll(s.Deny)
	if err != nil {
		return nil, err
	}
	return &policy{allow: newAddrSet(allow), deny: newAddrSet(deny)}, nil
}

func parseAll(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		p, err := parseEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// allowed reports whether a client at a may pass. a is unmapped and its
// zone dropped first; an invalid (unknown) address never passes.
func (p *policy) allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	if p.deny.contains(a) {
		return false
	}
	return p.allow.empty() || p.allow.contains(a)
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	pol, err := compile(spec)
	if err != nil {
		return nil, err
	}
	msg := spec.Message
	if msg == "" {
		msg = DefaultMessage
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var client netip.Addr
			if ex := pipeline.FromContext(r.Context()); ex != nil {
				client = ex.ClientIP
			}
			if !pol.allowed(client) {
				problem.Write(w, r, http.StatusForbidden, "", msg)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

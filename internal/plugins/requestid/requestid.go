// Package requestid implements the request_id plugin: every request gets an
// id that is returned to the client, passed to the upstream, written in the
// access log and in every problem response.
//
// An id sent by the client is kept when trust_incoming is true (the default)
// and it is a safe token: 1 to 128 characters from [A-Za-z0-9._:-]. Anything
// else is replaced by a new random id (32 hex digits), so a client cannot
// inject text into logs through it.
package requestid

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/textproto"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Spec configures request_id.
type Spec struct {
	// Header carries the id both ways. Default "X-Request-ID".
	Header string `yaml:"header"`
	// TrustIncoming keeps a well-formed id sent by the client. Default true.
	TrustIncoming bool `yaml:"trust_incoming"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate checks the header name.
func (s *Spec) Validate(p config.Path) error {
	if !config.IsHeaderName(s.Header) {
		return p.Key("header").Errorf("must be a valid header name, like X-Request-ID")
	}
	return nil
}

// Registration declares the request_id pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:     "request_id",
		Phase:    pipeline.PhaseRequestID,
		Global:   true,
		Implicit: pipeline.Always,
		Spec:     func() pipeline.Spec { return &Spec{Header: "X-Request-ID", TrustIncoming: true} },
		Build:    build,
	}
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	header := textproto.CanonicalMIMEHeaderKey(spec.Header)
	trust := spec.TrustIncoming
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := ""
			if trust {
				if v := r.Header[header]; len(v) == 1 && validID(v[0]) {
					id = v[0]
				}
			}
			// One allocation holds both header values; each slice is
			// capped at its own element, so neither header can change the
			// other.
			var vals []string
			if id == "" {
				id = newID()
				vals = []string{id, id}
				r.Header[header] = vals[0:1:1]
			} else {
				vals = []string{id}
			}
			if ex := pipeline.FromContext(r.Context()); ex != nil {
				ex.RequestID = id
			}
			w.Header()[header] = vals[len(vals)-1:]
			next.ServeHTTP(w, r)
		})
	}, nil
}

// newID returns 128 random bits as 32 hex digits. A request id must be
// unique, not secret, so it comes from the runtime's fast per-thread
// generator (ChaCha8-seeded) rather than the operating system's.
func newID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':':
		default:
			return false
		}
	}
	return true
}

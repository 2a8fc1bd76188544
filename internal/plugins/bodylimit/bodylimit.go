// Package bodylimit implements the body_limit plugin: requests whose body is
// larger than max are refused with 413 Content Too Large. A declared
// Content-Length over the limit is refused before anything is read or sent
// upstream; a chunked body is counted while it streams, and the request is
// stopped with 413 as soon as it passes the limit.
//
// The gateway applies body_limit with its default max to every route unless
// the config sets it.
package bodylimit

import (
	"net/http"
	"strconv"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// DefaultMax is the body limit applied when the config says nothing.
const DefaultMax = 10 << 20

// Spec configures body_limit.
type Spec struct {
	// Max is the largest request body accepted. Default 10MiB; 0 means no
	// limit.
	Max config.ByteSize `yaml:"max"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate accepts any non-negative size (ByteSize refuses negatives).
func (s *Spec) Validate(config.Path) error { return nil }

// Registration declares the body_limit pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:     "body_limit",
		Phase:    pipeline.PhaseLimits,
		Implicit: pipeline.Always,
		Spec:     func() pipeline.Spec { return &Spec{Max: DefaultMax} },
		Build:    build,
	}
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	max := int64(s.(*Spec).Max)
	if max == 0 {
		return nil, nil
	}
	detail := "request body is larger than the limit of " + strconv.FormatInt(max, 10) + " bytes"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				w.Header().Set("Connection", "close")
				problem.Write(w, r, http.StatusRequestEntityTooLarge, "", detail)
				return
			}
			if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

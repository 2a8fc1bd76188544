// Package acl implements the acl plugin: it admits only authenticated
// consumers in one of the allowed groups (allow), or refuses consumers in
// any of the denied groups (deny). It runs after authentication and the
// auth gate; a request with no consumer is refused with 401, and a
// consumer that is not allowed with 403.
//
// The anonymous consumer has groups only if its config gives it some.
package acl

import (
	"errors"
	"net/http"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's config key.
const Name = "acl"

// Spec configures acl. Exactly one of Allow and Deny is set.
type Spec struct {
	// Allow lists the groups whose consumers may use the route.
	Allow []string `yaml:"allow"`
	// Deny lists the groups whose consumers may not use the route.
	Deny []string `yaml:"deny"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate requires exactly one non-empty list of non-empty groups.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	switch {
	case len(s.Allow) == 0 && len(s.Deny) == 0:
		errs = append(errs, p.Errorf("set allow or deny: a list of consumer groups"))
	case len(s.Allow) > 0 && len(s.Deny) > 0:
		errs = append(errs, p.Key("deny").Errorf("cannot be combined with allow; use one of them"))
	}
	for i, g := range s.Allow {
		if g == "" {
			errs = append(errs, p.Index("allow", i).Errorf("group must not be empty"))
		}
	}
	for i, g := range s.Deny {
		if g == "" {
			errs = append(errs, p.Index("deny", i).Errorf("group must not be empty"))
		}
	}
	return errors.Join(errs...)
}

// Registration declares the acl pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseAuthorize,
		Spec:  func() pipeline.Spec { return &Spec{} },
		Build: build,
	}
}

func build(s pipeline.Spec, _ *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	allow := len(spec.Allow) > 0
	groups := spec.Deny
	if allow {
		groups = spec.Allow
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ex := pipeline.FromContext(r.Context())
			if ex == nil || ex.Consumer == nil {
				problem.Write(w, r, http.StatusUnauthorized, "", "authentication required")
				return
			}
			if inAny(ex.Consumer, groups) != allow {
				problem.Write(w, r, http.StatusForbidden, "", "consumer is not allowed on this route")
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

func inAny(c *consumer.Consumer, groups []string) bool {
	for _, g := range groups {
		if c.InGroup(g) {
			return true
		}
	}
	return false
}

// Package plugins lists every plugin built into Portico. The list is one
// literal, so the set stays visible and greppable; there is no init-time
// registration.
package plugins

import (
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/accesslog"
	"github.com/portico-gateway/portico/internal/plugins/acl"
	"github.com/portico-gateway/portico/internal/plugins/authgate"
	"github.com/portico-gateway/portico/internal/plugins/basicauth"
	"github.com/portico-gateway/portico/internal/plugins/bodylimit"
	"github.com/portico-gateway/portico/internal/plugins/cache"
	"github.com/portico-gateway/portico/internal/plugins/compression"
	"github.com/portico-gateway/portico/internal/plugins/cors"
	"github.com/portico-gateway/portico/internal/plugins/deprecation"
	"github.com/portico-gateway/portico/internal/plugins/forwardauth"
	"github.com/portico-gateway/portico/internal/plugins/introspection"
	"github.com/portico-gateway/portico/internal/plugins/iprestriction"
	"github.com/portico-gateway/portico/internal/plugins/jwt"
	"github.com/portico-gateway/portico/internal/plugins/keyauth"
	"github.com/portico-gateway/portico/internal/plugins/mtlsauth"
	"github.com/portico-gateway/portico/internal/plugins/ratelimit"
	"github.com/portico-gateway/portico/internal/plugins/requestid"
	"github.com/portico-gateway/portico/internal/plugins/transform"
)

// All returns the registrations of every built-in pipeline.
func All() []pipeline.Registration {
	return []pipeline.Registration{
		requestid.Registration(),
		accesslog.Registration(),
		iprestriction.Registration(),
		cors.Registration(),
		compression.Registration(),
		bodylimit.Registration(),
		keyauth.Registration(),
		jwt.Registration(),
		basicauth.Registration(),
		introspection.Registration(),
		mtlsauth.Registration(),
		forwardauth.Registration(),
		authgate.Registration(),
		acl.Registration(),
		ratelimit.IPRegistration(),
		ratelimit.Registration(),
		transform.RequestRegistration(),
		transform.ResponseRegistration(),
		deprecation.Registration(),
		cache.Registration(),
	}
}

// Planned names plugins that later versions add, so a config that uses one
// gets "not available in this version" rather than "unknown plugin".
var Planned = map[string]string{}

// NewRegistry returns the registry of all built-in plugins.
func NewRegistry() *pipeline.Registry { return pipeline.NewRegistry(All(), Planned) }

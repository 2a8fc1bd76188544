// Package plugins lists every plugin built into Portico. The list is one
// literal, so the set stays visible and greppable; there is no init-time
// registration.
package plugins

import (
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/plugins/accesslog"
	"github.com/portico-gateway/portico/internal/plugins/bodylimit"
	"github.com/portico-gateway/portico/internal/plugins/requestid"
)

// All returns the registrations of every built-in plugin.
func All() []plugin.Registration {
	return []plugin.Registration{
		requestid.Registration(),
		accesslog.Registration(),
		bodylimit.Registration(),
	}
}

// Planned names plugins that later versions add, so a config that uses one
// gets "not available in this version" rather than "unknown plugin".
var Planned = map[string]string{
	"jwt":                  "JWT authentication",
	"key_auth":             "API key authentication",
	"basic_auth":           "basic authentication",
	"oauth2_introspection": "OAuth2 token introspection",
	"acl":                  "consumer group authorization",
	"rate_limit":           "rate limiting",
	"cors":                 "CORS",
	"compression":          "response compression",
	"request_transform":    "request transformation",
	"response_transform":   "response transformation",
	"ip_restriction":       "IP allow and deny lists",
	"cache":                "response caching",
}

// NewRegistry returns the registry of all built-in plugins.
func NewRegistry() *plugin.Registry { return plugin.NewRegistry(All(), Planned) }

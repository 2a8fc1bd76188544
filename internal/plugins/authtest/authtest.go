// Package authtest runs authentication plugins the way the gateway does,
// for their tests. It is package plugintest (a real edge that strips
// identity headers and creates the Exchange, the chain with the auth gate
// added as the gateway adds it, the real proxy and a recording upstream)
// under the names the authentication plugins' tests use.
package authtest

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// Configure decodes src (YAML settings, "" for the defaults) into reg's
// Spec strictly and validates it, as the plugin registry does.
func Configure(t testing.TB, reg pipeline.Registration, src string) pipeline.Configured {
	t.Helper()
	return plugintest.Configure(t, reg, src)
}

// TryConfigure is Configure returning the decode or validation error.
func TryConfigure(reg pipeline.Registration, src string) (pipeline.Configured, error) {
	return plugintest.TryConfigure(reg, src)
}

// Options are the surroundings of a test gateway (route "test", service
// "svc" unless set).
type Options = plugintest.Options

// Seen is what one request looked like when it reached the upstream.
type Seen = plugintest.Request

// Result is the client's view of one request, and the upstream's.
type Result = plugintest.Result

// Gateway is a running test gateway.
type Gateway struct {
	*plugintest.Gateway
}

// Build compiles plugins into a chain in front of an upstream and starts
// an edge; it returns the chain's build error instead of failing.
func Build(t testing.TB, opts Options, plugins ...pipeline.Configured) (*Gateway, error) {
	t.Helper()
	g, err := plugintest.Build(t, opts, plugins...)
	if err != nil {
		return nil, err
	}
	return &Gateway{Gateway: g}, nil
}

// Start is Build failing the test on a build error.
func Start(t testing.TB, opts Options, plugins ...pipeline.Configured) *Gateway {
	t.Helper()
	return &Gateway{Gateway: plugintest.Start(t, opts, plugins...)}
}

// WithClientCertificate returns a copy of g whose Client presents cert
// (nil: none) whenever the listener asks for one.
func (g *Gateway) WithClientCertificate(t testing.TB, cert *tls.Certificate) *Gateway {
	return &Gateway{Gateway: g.Gateway.WithClientCertificate(t, cert)}
}

// Do sends a GET for pathAndQuery with header. Requests to one Gateway
// must not run concurrently.
func (g *Gateway) Do(t testing.TB, pathAndQuery string, header http.Header) Result {
	t.Helper()
	return g.Send(t, g.NewRequest(t, http.MethodGet, pathAndQuery, nil, header))
}

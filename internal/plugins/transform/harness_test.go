package transform

import (
	"testing"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// startGateway runs plugins as route "orders" in the shared test gateway.
func startGateway(t testing.TB, opts plugintest.Options, plugins ...pipeline.Configured) *plugintest.Gateway {
	t.Helper()
	opts.Route = "orders"
	return plugintest.Start(t, opts, plugins...)
}

func reqPlugin(t testing.TB, src string) pipeline.Configured {
	t.Helper()
	return plugintest.Configure(t, RequestRegistration(), src)
}

func respPlugin(t testing.TB, src string) pipeline.Configured {
	t.Helper()
	return plugintest.Configure(t, ResponseRegistration(), src)
}

package gateway

import (
	"errors"
	"net/http"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/upstream"
)

// services are the compiled services of one snapshot: each one's config,
// runtime state (shared with other snapshots by name), client and retry
// budget.
type services struct {
	cfg     map[string]*config.Service
	runtime map[string]*upstream.Service
	client  map[string]proxy.Client
	budget  map[string]*upstream.RetryBudget
	list    []*upstream.Service
}

// compileServices resolves every service to its runtime state and picks
// its client: HTTP/1.1 for every service today. Retry budgets are per
// service (a route with its own retries has its own), per snapshot.
func compileServices(cfg *config.Config, d Deps) (*services, error) {
	n := len(cfg.Services)
	s := &services{cfg: make(map[string]*config.Service, n), runtime: make(map[string]*upstream.Service, n),
		client: make(map[string]proxy.Client, n), budget: make(map[string]*upstream.RetryBudget)}
	var errs []error
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		svc, err := d.Upstreams.Service(*sc)
		if err != nil {
			errs = append(errs, config.Path{}.Index("services", i).Errorf("%s", err.Error()))
			continue
		}
		s.cfg[sc.Name], s.runtime[sc.Name] = sc, svc
		s.list = append(s.list, svc)
		s.client[sc.Name] = proxy.NewHTTP1(proxy.HTTP1Options{Connect: sc.Timeouts.Connect.D(),
			ResponseHeader: sc.Timeouts.ResponseHeader.D(), Logger: d.Logger, Tunnels: d.Tunnels})
		if sc.Retries != nil {
			s.budget[sc.Name] = upstream.NewRetryBudget(sc.Retries.Budget)
		}
	}
	return s, errors.Join(errs...)
}

// terminalFor builds the terminal of route rc (at p) by the route's kind.
// Every route is of kind proxy today: its terminal sends requests to its
// service.
func (s *services) terminalFor(rc *config.Route, p config.Path, d Deps) (pipeline.Terminal, error) {
	sc, svc := s.cfg[rc.Service], s.runtime[rc.Service]
	if sc == nil || svc == nil {
		return nil, p.Key("service").Errorf("unknown service %q", rc.Service)
	}
	retries, budget := sc.Retries, s.budget[sc.Name]
	if rc.Retries != nil {
		retries, budget = rc.Retries, upstream.NewRetryBudget(rc.Retries.Budget)
	}
	po := proxy.Options{
		Service:      svc,
		Client:       s.client[sc.Name],
		Timeouts:     sc.Timeouts,
		PreserveHost: sc.PreserveHost,
		HostHeader:   sc.HostHeader,
		Logger:       d.Logger,
		Tunnels:      d.Tunnels,
		Retries:      retries,
		Fallback:     rc.Fallback,
	}
	if budget != nil {
		po.Budget = budget
	}
	return proxy.New(po), nil
}

// problemTerminal answers with a fixed problem: the terminal of the chains
// around requests that match no route (400, 404, 405).
type problemTerminal struct {
	status int
	detail string
}

var _ pipeline.Terminal = (*problemTerminal)(nil)

func (t *problemTerminal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, t.status, "", t.detail)
}

// Describe says which problem the terminal answers with.
func (t *problemTerminal) Describe(*http.Request, *pipeline.Exchange) pipeline.Plan {
	return pipeline.Plan{Kind: "respond", Status: t.status, Detail: t.detail}
}

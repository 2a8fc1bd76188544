package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/acme"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/redisclient"
)

// managerEntry is an ACME manager kept in the shared state, or the error
// that kept it from being made. Its Run is the manager's.
type managerEntry struct {
	m   *acme.Manager
	err error
}

// acmeManager returns the manager of a listener's tls.acme, made the
// first time and kept while configs ask for the same settings and
// storage: a reload keeps its certificates, schedule and backoff.
func (s *Server) acmeManager(cfg *config.Config, a *config.ACME) (*acme.Manager, error) {
	store, storeID, err := acmeStorage(s.deps.Shared, cfg, a)
	if err != nil {
		return nil, err
	}
	// HTTP-01 is answered on plain listeners only: without one, the
	// authority is not asked to use it.
	if !slices.ContainsFunc(cfg.PublicListeners(), func(l config.Listener) bool { return l.TLS == nil }) {
		c := *a
		c.Challenges = slices.DeleteFunc(slices.Clone(a.Challenges), func(ch string) bool { return ch == config.ChallengeHTTP01 })
		a = &c
	}
	// The CA's content is part of the key: a fixed ca_file takes effect
	// on the next reload.
	ca, err := acme.ReadCA(a.CAFile)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256([]byte(strings.Join([]string{
		a.Directory, a.Email, string(ca), strings.Join(a.Challenges, ","), a.RenewBefore.D().String(),
		strings.Join(a.Domains, ","), storeID}, "\x00")))
	key := pipeline.NewKey[*managerEntry]("acme:" + hex.EncodeToString(id[:12]))
	e := pipeline.Get(s.deps.Shared, key, func() *managerEntry {
		m, err := acme.New(acme.Options{Settings: a, Storage: store, Logger: s.log.With("acme", a.Directory),
			Orders: s.deps.Telemetry.ACMEOrders(), CA: ca})
		return &managerEntry{m: m, err: err}
	})
	return e.m, e.err
}

// acmeStorage is where ACME state is kept: Redis when store.redis is
// configured (shared by the instances), else a directory.
func acmeStorage(shared *pipeline.Shared, cfg *config.Config, a *config.ACME) (acme.Storage, string, error) {
	if cfg.Store != nil && cfg.Store.Redis != nil {
		r := cfg.Store.Redis
		c, err := redisclient.Shared(shared, r)
		if err != nil {
			return nil, "", err
		}
		return acme.NewRedis(c, r.KeyPrefix+"acme:"), redisclient.Key(r) + r.KeyPrefix, nil
	}
	dir := a.Storage.Dir
	if dir == "" {
		dir = acme.DefaultDir()
	}
	return acme.NewDir(dir), "dir:" + dir, nil
}

// Run runs the manager (pipeline.Runner) until ctx ends: until shutdown,
// or until a reload retires it.
func (e *managerEntry) Run(ctx context.Context) {
	if e.m != nil {
		e.m.Run(ctx)
	}
}

var _ pipeline.Runner = (*managerEntry)(nil)

package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/portico-gateway/portico/internal/acme"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/redisclient"
)

// certsTimeout bounds a certs command's calls to the ACME server.
const certsTimeout = 2 * time.Minute

// certs runs `portico certs SUBCOMMAND`.
func certs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprint(stderr, "usage: portico certs revoke [-c portico.yaml] NAME\n")
		return 2
	}
	fs := newFlagSet("certs revoke", stderr)
	file := configFlag(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, "usage: portico certs revoke [-c portico.yaml] NAME\n")
		return 2
	}
	name := fs.Arg(0)
	cfg, err := config.Load(*file)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	var set *config.ACME
	for _, l := range cfg.PublicListeners() {
		if l.TLS != nil && l.TLS.ACME.Has(name) {
			set = l.TLS.ACME
		}
	}
	if set == nil {
		fmt.Fprintf(stderr, "portico: %s is not in the acme.domains of any listener of %s\n", name, *file)
		return 1
	}
	var store acme.Storage
	if cfg.Store != nil && cfg.Store.Redis != nil {
		c, err := redisclient.New(cfg.Store.Redis)
		if err != nil {
			fmt.Fprintln(stderr, "portico:", err)
			return 1
		}
		defer c.Close()
		store = acme.NewRedis(c, cfg.Store.Redis.KeyPrefix+"acme:")
	} else {
		dir := set.Storage.Dir
		if dir == "" {
			dir = acme.DefaultDir()
		}
		store = acme.NewDir(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), certsTimeout)
	defer cancel()
	r, err := acme.Revoke(ctx, set, store, name)
	if err != nil {
		fmt.Fprintln(stderr, "portico:", err)
		return 1
	}
	fmt.Fprintf(stdout, "revoked the certificate of %s (serial %s) and deleted it from storage;\n"+
		"reload the running gateways (SIGHUP or POST /reload) to order a new one now\n", r.Domain, r.Serial)
	return 0
}

// Package cli implements the portico command line: run, validate, demo and
// version. cmd/portico only calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/demo"
	"github.com/portico-gateway/portico/internal/gateway"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = ""

const usage = `portico — an API gateway in one binary

Usage:
  portico run      [-c portico.yaml]     serve the config (default ./portico.yaml or $PORTICO_CONFIG)
  portico validate [-c portico.yaml]     check a config: prints "ok" or every error, exit 1 on errors
  portico demo     [--listen :8080] [--admin 127.0.0.1:9901] [--control 127.0.0.1:9902]
                                         run the gateway in front of built-in demo services
  portico certs revoke [-c portico.yaml] NAME
                                         revoke the ACME certificate of NAME and delete it from storage
  portico version                        print the version

Signals (run): SIGHUP reloads the config, SIGUSR1 reopens log files,
SIGTERM/SIGINT drain in-flight requests and stop.
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return run(args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "certs":
		return certs(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "portico", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portico: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("PORTICO_CONFIG")
	if def == "" {
		def = "portico.yaml"
	}
	c := fs.String("c", def, "config file")
	fs.StringVar(c, "config", def, "config file (same as -c)")
	return c
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("portico "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	file := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := check(*file); err != nil {
		printErrors(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// check runs parse, validate and compile, and discards the result.
func check(file string) error {
	cfg, err := config.Load(file)
	if err != nil {
		if cfg == nil {
			return err
		}
		// Report the plugin settings' errors in the same run.
		return cfg.Report(errors.Join(err, gateway.CheckPlugins(cfg, plugins.NewRegistry())))
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = gateway.Check(cfg, discard)
	return err
}

// printErrors prints every leaf error of a joined tree on its own line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, line)
		}
	}
}

func newLogger(level string, stderr io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: use debug, info, warn or error")
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	file := configFlag(fs)
	level := fs.String("log-level", "info", "log level of the gateway's own log (debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "portico:", err)
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	path := *file
	return serve(cfg, gateway.Options{
		Logger:    logger,
		Sinks:     telemetry.NewSinks(stdout, stderr),
		Load:      func() (*config.Config, error) { return config.Load(path) },
		WatchFile: path,
		Version:   version(),
	}, stderr, nil)
}

// gcPercent is the garbage collector target used unless GOGC is set. A
// gateway's live heap is small and its garbage is short-lived per-request
// data, so collecting less often saves CPU on every request (measured in
// docs/benchmarks.md) for a bounded amount of memory.
const gcPercent = 400

// tuneGC applies gcPercent when the operator has not chosen GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// serve runs the gateway until SIGTERM or SIGINT. onStart, if set, runs
// once the listeners are open.
func serve(cfg *config.Config, opts gateway.Options, stderr io.Writer, onStart func(*gateway.Server)) int {
	srv, err := gateway.New(cfg, opts)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				switch sig {
				case syscall.SIGHUP:
					_ = srv.Reload() // the result is logged by the server
				case syscall.SIGUSR1:
					if err := opts.Sinks.Reopen(); err != nil {
						opts.Logger.Error("reopen log files failed", "error", err)
					} else {
						opts.Logger.Info("log files reopened")
					}
				}
			}
		}
	}()
	if onStart != nil {
		go func() {
			srv.Addr()
			onStart(srv)
		}()
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "portico:", err)
		return 1
	}
	return 0
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", ":8080", "public listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", `admin listen address, loopback only ("off" disables it)`)
	controlAddr := fs.String("control", demo.DefaultControlAddr,
		`loopback address of the demo's control listener, which stops and starts the orders replicas ("off" disables it)`)
	level := fs.String("log-level", "info", "log level of the gateway's own log")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "portico:", err)
		return 2
	}
	svcs, err := demo.Start(logger)
	if err != nil {
		fmt.Fprintln(stderr, "portico: start demo services:", err)
		return 1
	}
	defer svcs.Close()
	controlURL := ""
	if *controlAddr != "off" {
		addr, err := svcs.ListenControl(*controlAddr)
		if err != nil {
			fmt.Fprintln(stderr, "portico: --control:", err)
			return 1
		}
		controlURL = "http://" + addr
		logger.Info("demo control listening", "control", addr)
	}
	env := svcs.Env()
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	cfg, err := config.Parse(demo.Config(), "examples/demo.yaml", lookup)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	cfg.Listen, cfg.Admin.Listen = *listen, *adminAddr
	if !cfg.Admin.OnLoopback() {
		// The demo's config is embedded and sets no tokens: say what to do
		// instead of pointing at a file the user cannot edit.
		fmt.Fprintf(stderr, "portico: --admin %s: the demo's admin API has no tokens, so it listens on loopback "+
			"only (127.0.0.1, ::1 or localhost); for an admin API with tokens, see examples/admin-auth.yaml\n", *adminAddr)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		printErrors(stderr, err)
		return 1
	}
	return serve(cfg, gateway.Options{
		Logger:  logger,
		Sinks:   telemetry.NewSinks(stdout, stderr),
		Version: version(),
	}, stderr, func(srv *gateway.Server) {
		fmt.Fprint(stdout, demo.Tour(httpURL(srv.Addr()), httpURL(srv.AdminAddr()), controlURL))
	})
}

// httpURL turns a bound address into a URL a user can paste; an unspecified
// host becomes localhost.
func httpURL(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, found := strings.Cut(addr, "]:")
	if found {
		host += "]"
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	if host == "" || host == "0.0.0.0" || host == "[::]" {
		host = "localhost"
	}
	return "http://" + host + ":" + port
}

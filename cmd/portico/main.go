// Command portico is an API gateway: see `portico help`.
package main

import (
	"os"

	"github.com/portico-gateway/portico/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

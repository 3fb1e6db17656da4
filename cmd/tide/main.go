// Command tide runs RocketMQ-driven serverless applications on one machine from Knative YAML.
//
// main stays thin: the command tree lives in package cli, the composition root in package server. The one thing
// main does itself is process-wide: the garbage collector's heap floor (internal/gcfloor, TIDE_GC_FLOOR).
package main

import (
	"fmt"
	"os"

	"github.com/tide-run/tide/cli"
	"github.com/tide-run/tide/internal/gcfloor"
)

func main() {
	if _, err := gcfloor.InstallFromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "tide: %v\n", err)
		os.Exit(2)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

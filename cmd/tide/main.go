// Command tide runs RocketMQ-driven serverless applications on one machine from Knative YAML.
//
// main stays thin: the command tree lives in package cli, the composition root in package server.
package main

import (
	"os"

	"github.com/tide-run/tide/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

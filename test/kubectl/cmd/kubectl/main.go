// Command kubectl is the real kubectl (k8s.io/kubectl/pkg/cmd at the project's Kubernetes module version), built
// only by the tests in test/kubectl so they drive tide with the code users run, not with a kubectl found on PATH.
// It is never linked into tide (internal/archtest checks that cmd/tide does not depend on k8s.io/kubectl).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
	os.Exit(0)
}

// Command kubectl is kubectl built from the k8s.io/kubectl module at the version this
// helper module pins, for the project's tests (kustomize builds, server-side dry
// runs) on machines whose package manager has no recent kubectl.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		// Prints the error the way kubectl does and exits non-zero.
		util.CheckErr(err)
	}
}

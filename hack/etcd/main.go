// Command etcd is the upstream etcd server, built at the version pinned in this
// module's go.mod for the project's integration tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

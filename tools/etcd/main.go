// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 at the version pinned in go.mod
// (scripts/local-cluster.sh builds it; the project's tests start it on 127.0.0.1).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }

package cluster_test

import (
	"testing"

	"github.com/elasti-mesh/elasti/integration/cluster"
)

func TestMain(m *testing.M) {
	cluster.Main(m, cluster.Options{})
}

package istio_test

import (
	"strings"
	"testing"

	"github.com/elasti-mesh/elasti/extproc"
	"github.com/elasti-mesh/elasti/istio"
)

// elasti-extproc caps its timeout overrides at its MaxMessageTimeout, which must be
// the filter's max_message_timeout: Envoy ignores an override above it.
func TestExtProcAgreesWithEnvoyFilter(t *testing.T) {
	if extproc.DefaultMaxMessageTimeout != istio.ExtProcMaxMessageTimeout {
		t.Errorf("extproc.DefaultMaxMessageTimeout = %v, want the filter's max_message_timeout %v",
			extproc.DefaultMaxMessageTimeout, istio.ExtProcMaxMessageTimeout)
	}
	if !strings.Contains(istio.ExtProcCluster, "|9002|") || !strings.HasSuffix(extproc.DefaultAddr, ":9002") {
		t.Errorf("ext_proc cluster %q and extproc.DefaultAddr %q disagree on the port", istio.ExtProcCluster, extproc.DefaultAddr)
	}
}

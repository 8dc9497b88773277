package cluster

import (
	"errors"
	"strings"
	"testing"
)

// TestMissingAssetsSayWhatToRun checks that a folder without the control plane
// binaries fails with the command that builds them.
func TestMissingAssetsSayWhatToRun(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	_, err := FindAssets(t.Context(), t.TempDir())
	if !errors.Is(err, errNoAssets) || !strings.Contains(err.Error(), "hack/controlplane.sh") {
		t.Errorf("FindAssets() error = %v, want errNoAssets naming hack/controlplane.sh", err)
	}
}

package cluster_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Programs that only submit or only work import package cluster; the NATS
// server (a large dependency) must stay out of them, in cluster/embedded.
func TestClusterDoesNotLinkTheServer(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "github.com/nats-io/nats.go/jetstream")
	require.NotContains(t, string(out), "nats-server", "package cluster imports the NATS server:\n%s", strings.TrimSpace(string(out)))
}

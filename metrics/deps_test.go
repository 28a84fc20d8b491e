package metrics_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCoreDoesNotLinkPrometheus: Prometheus is this package's dependency
// (and the CLI's), never the core's, so that an embedder of the engine, the
// pool or the cluster links it only by importing package metrics; and this
// package links the NATS client, never the NATS server.
func TestCoreDoesNotLinkPrometheus(t *testing.T) {
	deps := func(pkg string) string {
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	for _, pkg := range []string{"../engine", "../pool", "../future", "../cluster", "../cluster/embedded"} {
		d := deps(pkg)
		require.Contains(t, d, "github.com/wasmpool/wasmpool/", "go list -deps %s", pkg)
		assert.NotContains(t, d, "github.com/prometheus/", "package %s links Prometheus:\n%s", pkg, strings.TrimSpace(d))
	}
	d := deps(".")
	require.Contains(t, d, "github.com/prometheus/client_golang/prometheus")
	assert.NotContains(t, d, "nats-server", "package metrics links the NATS server")
}

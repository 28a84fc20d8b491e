//go:build soak && linux

package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The cluster's soak test (make soak; build tag soak, never part of make
// test): WASMPOOL_SOAK_MODULES (default 10,000) distinct modules, one task
// each, through one long-lived worker process, whose resident memory must
// stay bounded: what a worker sent new plugins for weeks must do. It
// reports the worker's RSS after every tenth of the modules.

func processRSS(pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestSoakManyModulesThroughOneWorker(t *testing.T) {
	n := 10000
	if s := os.Getenv("WASMPOOL_SOAK_MODULES"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	s := startServer(t, embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	set := settings(t, 30*time.Second)
	x := newExecutor(t, connect(t, s, "soak"), cluster.Config{Settings: set, Window: 64})
	t.Setenv(workerNoCacheEnv, "1")
	w := startWorkerProc(t, s.ClientURL(), "soak-worker", set, "pass")
	pid := w.cmd.Process.Pid
	// The submitter's engine only names the modules: the interpreter
	// compiles them cheapest.
	e, err := engine.New(context.Background(), engine.Config{Interpreter: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })

	ctx := context.Background()
	start := time.Now()
	tasks := func(yield func(engine.Task) bool) {
		for i := range n {
			m, err := e.Compile(ctx, testmod.Const(uint32(i)))
			if err != nil {
				t.Errorf("module %d: %v", i, err)
				return
			}
			if !yield(engine.Task{Module: m, Func: "run", Params: []uint64{}}) {
				return
			}
		}
	}
	var rss []uint64
	i := 0
	for res, err := range x.Map(ctx, tasks) {
		require.NoError(t, err, "module %d", i)
		require.Equal(t, []uint64{uint64(uint32(i))}, res.Values, "module %d", i)
		i++
		if i%(max(n/10, 1)) == 0 {
			rss = append(rss, processRSS(pid))
			t.Logf("%6d modules, %5.0f/s: the worker's RSS is %d MiB", i, float64(i)/time.Since(start).Seconds(), rss[len(rss)-1]>>20)
		}
	}
	require.Equal(t, n, i)
	require.GreaterOrEqual(t, len(rss), 2)
	// Past the first tenth, a bounded worker has reached its plateau: its
	// caches are full, and what more modules bring, they drop.
	assert.Less(t, rss[len(rss)-1], rss[0]+64<<20, "the worker's RSS grew from %d MiB to %d MiB", rss[0]>>20, rss[len(rss)-1]>>20)
}

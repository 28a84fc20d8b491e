//go:build soak && linux

package cluster_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
)

// The failover drill (make soak): WASMPOOL_SOAK_FAILOVER_TASKS (default 2000) checked
// tasks through Map (in input order, as a batch runs) on three worker
// processes, with the default AckWait; a worker is killed (SIGKILL) and
// replaced after every eighth of the tasks, and the broker restarted on the
// same store halfway. Every result is checked by its content: 0 lost, 0
// wrong. It reports the longest stalls of the ordered output, which are the
// failovers.
func TestSoakFailoverDrill(t *testing.T) {
	n := 2000
	if s := os.Getenv("WASMPOOL_SOAK_FAILOVER_TASKS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	s := startServer(t, embedded.ServerConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	set := settings(t, 0) // the default AckWait
	x := newExecutor(t, connect(t, s, "drill"), cluster.Config{Settings: set, Window: 64})
	var workers []*workerProc
	spawned := 0
	spawn := func() *workerProc {
		spawned++
		return startWorkerProc(t, s.ClientURL(), fmt.Sprintf("w%d", spawned), set, "pass")
	}
	for range 3 {
		workers = append(workers, spawn())
	}
	e := newEngine(t, nil)
	upper := gomod(t, e, "upper")
	tasks := func(yield func(engine.Task) bool) {
		for i := range n {
			if !yield(engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "item %d", i)}) {
				return
			}
		}
	}

	type stall struct {
		at  int
		gap time.Duration
	}
	var stalls []stall
	lost, wrong, kills, i := 0, 0, 0, 0
	start := time.Now()
	last := start
	for res, err := range x.Map(within(t), tasks) {
		now := time.Now()
		stalls = append(stalls, stall{i, now.Sub(last)})
		last = now
		switch {
		case err != nil:
			t.Errorf("task %d: %v", i, err)
			lost++
		case string(res.Output) != fmt.Sprintf("ITEM %d", i):
			t.Errorf("task %d: got %q", i, res.Output)
			wrong++
		}
		i++
		if i%max(n/8, 1) == 0 && i < n {
			k := kills % len(workers)
			workers[k].kill()
			workers[k] = spawn()
			kills++
			t.Logf("task %d: killed a worker and started another", i)
		}
		if i == n/2 {
			require.NoError(t, s.Restart())
			t.Logf("task %d: restarted the broker", i)
		}
	}
	elapsed := time.Since(start)
	slices.SortFunc(stalls, func(a, b stall) int { return int(b.gap - a.gap) })
	top := stalls[:min(len(stalls), kills+2)]
	assert.Equal(t, n, i)
	assert.Zero(t, lost, "lost")
	assert.Zero(t, wrong, "wrong")
	t.Logf("%d tasks in %v (%.0f/s), %d workers killed, 1 broker restart, AckWait %v: %d lost, %d wrong",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), kills, cluster.DefaultAckWait, lost, wrong)
	for _, s := range top {
		t.Logf("longest stalls of the ordered output: %v before task %d", s.gap.Round(time.Millisecond), s.at)
	}
}

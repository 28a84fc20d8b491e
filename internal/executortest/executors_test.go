package executortest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// kind is one kind of executor behind pool.Executor.
type kind struct {
	name string
	// inProcess: guest code runs in this process, which can hand a command
	// its streams (Task.Stdin, Stdout, Stderr); every other executor must
	// refuse them.
	inProcess bool
	// start returns a new executor of this kind running tasks on e, with
	// the given number of workers, closed at the end of the test.
	start func(t *testing.T, e *engine.Engine, workers int) pool.Executor
}

var namespaces atomic.Int64

// namespace is a cluster of its own, for each executor of the test.
func namespace() string {
	return "diff" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(namespaces.Add(1), 36)
}

func kinds() []kind {
	ks := []kind{}
	for _, iso := range []pool.Isolation{pool.InProcess, pool.Subprocess} {
		for _, mode := range []pool.Mode{pool.Threads, pool.Processes} {
			ks = append(ks, kind{
				name:      fmt.Sprintf("pool/%v/%v", iso, mode),
				inProcess: iso == pool.InProcess,
				start: func(t *testing.T, e *engine.Engine, workers int) pool.Executor {
					cfg := pool.Config{Mode: mode, Workers: workers, Isolation: iso}
					if iso == pool.Subprocess {
						// A worker process stops its tasks itself, as a pool in
						// process does: a kill under the race detector's
						// slowness would blur the comparison.
						cfg.KillGrace = time.Minute
					}
					p, err := pool.New(e, cfg)
					require.NoError(t, err)
					t.Cleanup(func() { require.NoError(t, p.Close()) })
					return p
				},
			})
		}
	}
	// routeWait bounds how long a cluster task waits for a worker that
	// provides what it grants: long enough for a worker process to start
	// and advertise, short beside the default minute.
	const routeWait = 3 * time.Second
	ks = append(ks,
		kind{name: "embedded.Node", start: func(t *testing.T, e *engine.Engine, workers int) pool.Executor {
			n, err := embedded.Start(context.Background(), e, embedded.Config{
				Executor: cluster.Config{Settings: settings(namespace()), RouteWait: routeWait},
				Worker:   cluster.WorkerConfig{Pool: pool.Config{Workers: workers}, AllowMounts: true, PollWait: time.Second},
			})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, n.Close()) })
			return n
		}},
		kind{name: "cluster.Executor+worker process", start: func(t *testing.T, e *engine.Engine, workers int) pool.Executor {
			srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
			require.NoError(t, err)
			t.Cleanup(srv.Shutdown)
			nc, err := srv.Connect("differential executor")
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			ns := namespace()
			x, err := cluster.New(context.Background(), nc, cluster.Config{Settings: settings(ns), RouteWait: routeWait})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, x.Close()) })
			startWorker(t, srv.ClientURL(), ns, workers)
			return x
		}},
	)
	return ks
}

// running is an executor of each kind, started once for the corpus.
type running struct {
	kind
	x pool.Executor
}

func startAll(t *testing.T, e *engine.Engine, workers int) []running {
	var rs []running
	for _, k := range kinds() {
		rs = append(rs, running{kind: k, x: k.start(t, e, workers)})
	}
	return rs
}

package cluster_test

import (
	"context"
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

// Grants travel to cluster workers by name: the worker's own engine
// provides the functions. A task granting a capability no live worker
// provides is not sent to one that would refuse it: it fails after the
// RouteWait, with an error that matches as a refusal would.
func TestGrantsTravelByName(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	ctx := within(t)
	submitter := newEngine(t, nil)
	m := gomod(t, submitter, "caps")
	task := engine.Task{Module: m, Func: "call", Input: []byte("kv\npid\n"),
		Grants: []string{"kv"}, GrantArgs: map[string][]string{"kv": {"a"}}}

	kv := engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"pid": func(ctx context.Context, _ []byte) ([]byte, error) {
			return append(strconv.AppendInt(nil, int64(os.Getpid()), 10), strings.Join(engine.GrantArgs(ctx), ",")...), nil
		},
	}}
	for _, provided := range []bool{true, false} {
		cfg := engine.Config{CacheDir: testmod.CompileCache()}
		if provided {
			cfg.Capabilities = []engine.Capability{kv}
		}
		we, err := engine.New(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, we.Close(context.Background())) })
		st := settings(t, 5*time.Second)
		newWorker(t, connect(t, s, "worker"), we, st, 1)
		// The task's grants come from the executor's defaults.
		x := newExecutor(t, connect(t, s, "client"), cluster.Config{Settings: st, Grants: task.Grants, GrantArgs: task.GrantArgs,
			RouteWait: 100 * time.Millisecond})

		res, err := x.Submit(ctx, engine.Task{Module: task.Module, Func: task.Func, Input: task.Input}).Result(ctx)
		if provided {
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(os.Getpid())+"a", string(res.Output), "the worker's function, with the task's GrantArgs")
			continue
		}
		require.ErrorIs(t, err, engine.ErrNoCapability)
		require.ErrorIs(t, err, cluster.ErrNoWorker)
		assert.Regexp(t, `it requires capability kv; 1 worker live: \S+ lacks capability kv \(waited 100ms\)$`, err.Error())
	}
}

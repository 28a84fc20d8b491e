package pool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/pool"
)

type tenantKey struct{}

// echoCapability is provided by this process and by its worker processes
// (TestMain): "pid" says which process ran it.
func echoCapability() engine.Capability {
	return engine.Capability{Name: "echo", Funcs: map[string]engine.HostFunc{
		"echo": func(_ context.Context, in []byte) ([]byte, error) { return in, nil },
		"pid": func(context.Context, []byte) ([]byte, error) {
			return strconv.AppendInt(nil, int64(os.Getpid()), 10), nil
		},
		"tenant": func(ctx context.Context, _ []byte) ([]byte, error) {
			s, _ := ctx.Value(tenantKey{}).(string)
			return []byte(s), nil
		},
		"block": func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}}
}

// parentOnly is a capability this process provides and its worker
// processes do not.
var parentOnly = engine.Capability{Name: "parentonly", Funcs: map[string]engine.HostFunc{
	"get": func(context.Context, []byte) ([]byte, error) { return []byte("here"), nil },
}}

func capsPoolEngine(t *testing.T) *engine.Engine {
	return testEngine(t, engine.Config{Capabilities: []engine.Capability{echoCapability(), parentOnly}}, nil)
}

func capTask(m *engine.Module, fn, capability, hostFn, payload string) engine.Task {
	return engine.Task{Module: m, Func: fn, Input: []byte(capability + "\n" + hostFn + "\n" + payload)}
}

func TestPoolGrants(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := capsPoolEngine(t)
			m := goModule(t, e, "caps")
			// One worker: in Threads mode every task runs on the same warm
			// instance, so a grant must not outlive its task.
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 1, Grants: []string{"echo"}})
			ctx := context.WithValue(within(t), tenantKey{}, "acme")

			res, err := p.Submit(ctx, capTask(m, "call", "echo", "tenant", "")).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "acme", string(res.Output), "the host function sees the values of Submit's context")

			task := capTask(m, "handled", "echo", "echo", "hi")
			task.Grants = []string{} // the task's own grants, none, replace the pool's
			res, err = p.Submit(ctx, task).Result(ctx)
			require.NoError(t, err)
			assert.Contains(t, string(res.Output), `capability "echo" is not granted to this task`)

			res, err = p.Submit(ctx, capTask(m, "handled", "echo", "echo", "hi")).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "ok: hi", string(res.Output))

			task = capTask(m, "handled", "echo", "block", "")
			task.Timeout = 50 * time.Millisecond
			_, err = p.Submit(ctx, task).Result(ctx)
			require.ErrorIs(t, err, engine.ErrTimeout)
		})
	}
}

func TestSubprocessGrantsTravelByName(t *testing.T) {
	e := capsPoolEngine(t)
	m := goModule(t, e, "caps")
	p := subprocessPool(t, e, pool.Config{Workers: 1})
	ctx := within(t)

	task := capTask(m, "call", "echo", "pid", "")
	task.Grants = []string{"echo"}
	res, err := p.Submit(ctx, task).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(p.WorkerPIDs()[0]), string(res.Output), "the worker process's own function ran")

	task = capTask(m, "call", "parentonly", "get", "")
	task.Grants = []string{"parentonly"}
	_, err = p.Submit(ctx, task).Result(ctx)
	// The pool's engine has it, the worker process does not: the refusal is
	// one line that names both, and matches as the engine's own does.
	require.ErrorIs(t, err, engine.ErrNoCapability)
	assert.EqualError(t, err, fmt.Sprintf(`module "caps.wasm": worker process %d (%s) refused the task: it does not provide capability "parentonly", which the task grants (it provides: echo)`,
		p.WorkerPIDs()[0], filepath.Base(os.Args[0])))
	assert.Equal(t, taskerr.KindCapability, taskerr.Kind(err))

	// A grant no one provides is the task's mistake, refused as in process.
	task.Grants = []string{"nosuch"}
	_, err = p.Submit(ctx, task).Result(ctx)
	require.ErrorIs(t, err, engine.ErrNoCapability)
	assert.ErrorContains(t, err, `the task grants capability "nosuch", which this host does not provide (it provides: echo)`)

	task = capTask(m, "handled", "echo", "block", "")
	task.Grants, task.Timeout = []string{"echo"}, 50*time.Millisecond
	_, err = p.Submit(ctx, task).Result(ctx)
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Zero(t, p.Stats().ProcessCrashes, "the blocked host function ended with its task: no kill was needed")
}

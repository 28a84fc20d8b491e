package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

type tenantKey struct{}

// kvCapability is the test's capability: a key-value store whose functions
// also fail, panic and block on demand.
func kvCapability(kept chan<- context.Context) engine.Capability {
	store := map[string]string{"a": "apple"}
	return engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"get": func(ctx context.Context, in []byte) ([]byte, error) {
			v, ok := store[string(in)]
			if !ok {
				return nil, fmt.Errorf("no key %q", in)
			}
			return []byte(v), nil
		},
		"tenant": func(ctx context.Context, _ []byte) ([]byte, error) {
			s, _ := ctx.Value(tenantKey{}).(string)
			return []byte(s), nil
		},
		"args": func(ctx context.Context, _ []byte) ([]byte, error) {
			return fmt.Append(nil, engine.GrantArgs(ctx)), nil
		},
		"panic": func(context.Context, []byte) ([]byte, error) { panic("kv is broken") },
		"block": func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		"keep": func(ctx context.Context, _ []byte) ([]byte, error) {
			kept <- ctx
			return nil, nil
		},
	}}
}

func capsEngine(t *testing.T, kept chan<- context.Context) (*engine.Engine, *engine.Module) {
	e := newEngine(t, engine.Config{Capabilities: []engine.Capability{kvCapability(kept)}})
	return e, compileGo(t, e, "caps")
}

func kvTask(m *engine.Module, fn, hostFn, payload string, grants ...string) engine.Task {
	return engine.Task{Module: m, Func: fn, Input: []byte("kv\n" + hostFn + "\n" + payload), Grants: grants}
}

func TestCapabilityGrantedCall(t *testing.T) {
	e, m := capsEngine(t, nil)
	ctx := context.WithValue(context.Background(), tenantKey{}, "tenant-7")

	res, err := e.Run(ctx, kvTask(m, "twice", "get", "a", "kv"))
	require.NoError(t, err)
	assert.Equal(t, "apple|apple", string(res.Output))

	res, err = e.Run(ctx, kvTask(m, "call", "tenant", "", "kv"))
	require.NoError(t, err)
	assert.Equal(t, "tenant-7", string(res.Output), "the host function sees the values of the task's context")

	task := kvTask(m, "call", "args", "", "kv")
	task.GrantArgs = map[string][]string{"kv": {"x", "y"}}
	res, err = e.Run(ctx, task)
	require.NoError(t, err)
	assert.Equal(t, "[x y]", string(res.Output))
}

func TestCapabilityNotGranted(t *testing.T) {
	e, m := capsEngine(t, nil)
	ctx := context.Background()

	// The guest handles the refusal: the task succeeds.
	res, err := e.Run(ctx, kvTask(m, "handled", "get", "a"))
	require.NoError(t, err)
	assert.Equal(t, `error: capability "kv" is not granted to this task (granted: none) (not granted: true, no func: false)`, string(res.Output))

	// The guest passes it on: the task fails with the message.
	_, err = e.Run(ctx, kvTask(m, "call", "get", "a"))
	var te *engine.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, `capability "kv" is not granted to this task (granted: none)`, te.Message)

	// A capability the host lacks reads the same to the guest.
	res, err = e.Run(ctx, engine.Task{Module: m, Func: "handled", Input: []byte("fs\nread\n"), Grants: []string{"kv"}})
	require.NoError(t, err)
	assert.Contains(t, string(res.Output), `capability "fs" is not granted to this task (granted: kv)`)

	// Granted nothing, a module importing the ABI runs pure tasks.
	res, err = e.Run(ctx, engine.Task{Module: m, Func: "pure", Input: []byte("abc")})
	require.NoError(t, err)
	assert.Equal(t, "ABC", string(res.Output))
}

func TestCapabilityGrantNotProvided(t *testing.T) {
	e, m := capsEngine(t, nil)
	_, err := e.Run(context.Background(), engine.Task{Module: m, Func: "pure", Grants: []string{"kv", "http"}})
	require.ErrorIs(t, err, engine.ErrNoCapability)
	assert.EqualError(t, err, `module "caps.wasm": the task grants capability "http", which this host does not provide (it provides: kv)`)

	_, err = e.Run(context.Background(), engine.Task{Module: m, Func: "pure", GrantArgs: map[string][]string{"kv": nil}})
	require.ErrorIs(t, err, engine.ErrNoCapability)
}

func TestCapabilityErrorReachesGuest(t *testing.T) {
	e, m := capsEngine(t, nil)
	res, err := e.Run(context.Background(), kvTask(m, "handled", "get", "zebra", "kv"))
	require.NoError(t, err)
	assert.Equal(t, `error: no key "zebra" (not granted: false, no func: false)`, string(res.Output))

	res, err = e.Run(context.Background(), kvTask(m, "handled", "put", "a", "kv"))
	require.NoError(t, err)
	assert.Equal(t, `error: capability "kv" has no function "put" (not granted: false, no func: true)`, string(res.Output))
}

func TestCapabilityPanicFailsOnlyItsTask(t *testing.T) {
	e, m := capsEngine(t, nil)
	_, err := e.Run(context.Background(), kvTask(m, "handled", "panic", "", "kv"))
	require.ErrorIs(t, err, engine.ErrHostPanic)
	assert.EqualError(t, err, `module "caps.wasm": capability "kv" function "panic" panicked: kv is broken`)

	res, err := e.Run(context.Background(), kvTask(m, "call", "get", "a", "kv"))
	require.NoError(t, err, "the engine carries on")
	assert.Equal(t, "apple", string(res.Output))
}

func TestCapabilityBlockedStoppedByTimeout(t *testing.T) {
	e, m := capsEngine(t, nil)
	task := kvTask(m, "handled", "block", "", "kv")
	task.Timeout = 50 * time.Millisecond
	_, err := e.Run(context.Background(), task)
	require.ErrorIs(t, err, engine.ErrTimeout, "the guest must not carry on with the host function's error")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, kvTask(m, "handled", "block", "", "kv"))
		done <- err
	}()
	cancel()
	require.ErrorIs(t, <-done, engine.ErrCancelled)
}

func TestCapabilityContextValidForItsCallOnly(t *testing.T) {
	kept := make(chan context.Context, 1)
	e, m := capsEngine(t, kept)
	task := kvTask(m, "call", "keep", "", "kv")
	task.GrantArgs = map[string][]string{"kv": {"secret"}}
	_, err := e.Run(context.Background(), task)
	require.NoError(t, err)
	ctx := <-kept
	assert.Error(t, ctx.Err(), "the call is over")
	assert.Nil(t, engine.GrantArgs(ctx), "nor does its task's configuration outlive it")
}

func TestCapabilityWarmInstanceGrantsPerCall(t *testing.T) {
	e, m := capsEngine(t, nil)
	rt, err := e.NewRuntime(context.Background())
	require.NoError(t, err)
	defer rt.Close(context.Background())
	inst, err := rt.Instantiate(context.Background(), engine.Task{Module: m, Func: "handled"})
	require.NoError(t, err)
	defer inst.Close(context.Background())

	res, err := inst.Call(context.Background(), kvTask(m, "handled", "get", "a", "kv"))
	require.NoError(t, err)
	assert.Equal(t, "ok: apple", string(res.Output))
	res, err = inst.Call(context.Background(), kvTask(m, "handled", "get", "a"))
	require.NoError(t, err)
	assert.Contains(t, string(res.Output), "not granted: true", "a grant does not outlive its task on a warm instance")
}

func TestCapabilityBadPointerTraps(t *testing.T) {
	e, m := capsEngine(t, nil)
	_, err := e.Run(context.Background(), engine.Task{Module: m, Func: "badpointer", Grants: []string{"kv"}})
	var te *engine.TrapError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, engine.TrapOutOfBounds, te.Kind)
	assert.Contains(t, te.Message, "capability_call(")

	_, err = e.Run(context.Background(), engine.Task{Module: m, Func: "badresult", Grants: []string{"kv"}})
	require.ErrorAs(t, err, &te)
	assert.Equal(t, engine.TrapOutOfBounds, te.Kind)
	assert.Contains(t, te.Message, "capability_result_read(")
}

func TestCapabilityConfigErrors(t *testing.T) {
	for name, caps := range map[string][]engine.Capability{
		"no name":  {{Funcs: map[string]engine.HostFunc{}}},
		"twice":    {{Name: "a"}, {Name: "a"}},
		"nil func": {{Name: "a", Funcs: map[string]engine.HostFunc{"f": nil}}},
	} {
		_, err := engine.New(context.Background(), engine.Config{Capabilities: caps})
		assert.Error(t, err, name)
	}
}

// BenchmarkCapabilityCall is one task on a warm instance that makes one
// guest.Call (kv.get) against one that makes none: the difference is
// what a capability call costs.
func BenchmarkCapabilityCall(b *testing.B) {
	e, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{kvCapability(nil)}})
	require.NoError(b, err)
	defer e.Close(context.Background())
	m, err := e.CompileFile(context.Background(), testmod.Path(b, "caps"))
	require.NoError(b, err)
	for _, c := range []struct{ name, fn, input string }{{"pure", "pure", "a"}, {"call", "call", "kv\nget\na"}} {
		b.Run(c.name, func(b *testing.B) {
			rt, err := e.NewRuntime(context.Background())
			require.NoError(b, err)
			defer rt.Close(context.Background())
			task := engine.Task{Module: m, Func: c.fn, Input: []byte(c.input), Grants: []string{"kv"}}
			inst, err := rt.Instantiate(context.Background(), task)
			require.NoError(b, err)
			defer inst.Close(context.Background())
			for b.Loop() {
				if _, err := inst.Call(context.Background(), task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

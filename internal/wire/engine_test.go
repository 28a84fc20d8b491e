package wire_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/internal/wire/wiretest"
)

// notCarried lists what no wire carries, and why. Every other field of
// engine.Task, engine.Result and engine.Config must survive a round trip:
// a field added to one of them fails these tests until the codec carries
// it or it is listed here with its reason.
var notCarried = map[string]string{
	"Task.Module": "each wire names the module its own way (an id a worker process was sent, a digest in the cluster's store)",
	"Task.Stdin":  "a stream of this process: a wire refuses a command that sets one (wire.StreamsError)",
	"Task.Stdout": "a stream of this process: refused, as Stdin",
	"Task.Stderr": "a stream of this process: refused, as Stdin",
	"Config.HostModules[0].Define": "a Go function: the worker process grants its own host modules, " +
		"and the pool refuses one that does not grant every name",
	"Config.Capabilities[0].Funcs.value": "Go functions: capabilities travel by name, the worker's own engine provides them " +
		"and refuses a task granting one it lacks (engine.ErrNoCapability)",
	"Config.Capabilities[0].Funcs": "as Config.Capabilities[0].Funcs.value",
}

func assertCarried(t *testing.T, in, out any, unfilled []string) {
	t.Helper()
	for _, path := range unfilled {
		assert.Contains(t, notCarried, path, "%s cannot be filled (a func, channel or interface): say why no wire carries it", path)
	}
	for _, path := range wiretest.Lost(in, out) {
		if _, ok := notCarried[path]; !ok {
			t.Errorf("%s does not survive the wire: carry it, or list it in notCarried with the reason", path)
		}
	}
}

func TestEveryTaskFieldIsCarried(t *testing.T) {
	var in engine.Task
	unfilled := wiretest.Fill(&in)
	var enc wire.Encoder
	wire.EncodeTask(&enc, &in)
	var out engine.Task
	d := wire.NewDecoder(enc.Bytes())
	wire.DecodeTask(d, &out)
	require.NoError(t, d.Finish())
	assertCarried(t, in, out, unfilled)
	assert.Equal(t, []string{"Task.Module"}, wiretest.Lost(in, out), "the streams are refused, never lost: only the module is named apart")
}

func TestTaskRoundTripKeepsNilApartFromEmpty(t *testing.T) {
	for _, task := range []engine.Task{
		{Func: "sdk"},
		{Func: "raw", Params: []uint64{}},
		{Func: "raw", Params: []uint64{1, 1 << 63}, Env: map[string]string{"": "x", "K": ""}, Args: []string{""}, Timeout: -1},
		{Input: []byte{0, 1}},
	} {
		var enc wire.Encoder
		wire.EncodeTask(&enc, &task)
		var out engine.Task
		d := wire.NewDecoder(enc.Bytes())
		wire.DecodeTask(d, &out)
		require.NoError(t, d.Finish())
		assert.Equal(t, task, out)
		assert.Equal(t, task.Params == nil, out.Params == nil, "an SDK call stays an SDK call, a raw call of () a raw call")
	}
}

func TestEveryResultFieldIsCarried(t *testing.T) {
	var in engine.Result
	unfilled := wiretest.Fill(&in)
	var enc wire.Encoder
	wire.EncodeResult(&enc, &in)
	var out engine.Result
	d := wire.NewDecoder(enc.Bytes())
	wire.DecodeResult(d, &out)
	require.NoError(t, d.Finish())
	assert.Empty(t, unfilled)
	assert.Empty(t, wiretest.Lost(in, out))

	empty := engine.Result{Values: []uint64{}}
	enc.Reset()
	wire.EncodeResult(&enc, &empty)
	out = engine.Result{}
	wire.DecodeResult(wire.NewDecoder(enc.Bytes()), &out)
	assert.NotNil(t, out.Values, "the empty results of a raw call stay empty, not nil")
}

func TestEveryConfigFieldIsCarried(t *testing.T) {
	var in engine.Config
	unfilled := wiretest.Fill(&in)
	var enc wire.Encoder
	wire.EncodeConfig(&enc, &in)
	var out engine.Config
	d := wire.NewDecoder(enc.Bytes())
	wire.DecodeConfig(d, &out)
	require.NoError(t, d.Finish())
	assertCarried(t, in, out, unfilled)
	assert.True(t, out.Preinitialize, "issue 13: Preinitialize was dropped on the way to worker processes")
	assert.True(t, out.NoInterrupt, "the user's own NoInterrupt reaches the worker process")
}

func TestFramesOfMessages(t *testing.T) {
	msg, err := wire.AppendFrame(nil, 7, []byte("ab"), nil, []byte("c"))
	require.NoError(t, err)
	typ, payload, err := wire.ParseFrame(msg)
	require.NoError(t, err)
	assert.Equal(t, wire.Type(7), typ)
	assert.Equal(t, "abc", string(payload))

	// The same bytes as a stream's frame.
	var sb strings.Builder
	require.NoError(t, wire.NewWriter(&sb).WriteFrame(7, []byte("abc")))
	assert.Equal(t, sb.String(), string(msg))

	for name, bad := range map[string][]byte{
		"empty": nil, "short": {0, 0, 0}, "length past the end": append([]byte{0, 0, 0, 9}, 7, 'x'),
		"length short of the end": append([]byte{0, 0, 0, 1}, 7, 'x'),
	} {
		_, _, err := wire.ParseFrame(bad)
		assert.ErrorIs(t, err, wire.ErrMalformed, name)
	}
}

// sample errors of every kind a task can end with, as the engine, a pool
// and a cluster make them.
func sampleErrors() []error {
	trap := &engine.TrapError{Kind: engine.TrapUnreachable, Func: "f", Message: "unreachable", Stack: "s", Abort: "panic: boom"}
	return []error{
		&engine.Error{Module: "m", Err: trap},
		&engine.Error{Module: "m", Err: &engine.ExitError{Code: 3, Stderr: []byte("bye")}},
		&engine.Error{Module: "m", Err: &engine.TaskError{Message: "no"}},
		&engine.Error{Module: "m", Err: fmt.Errorf("%w after 1s", engine.ErrTimeout)},
		&engine.Error{Module: "m", Err: fmt.Errorf("%w by Close: %w", engine.ErrCancelled, taskerr.ErrShutdown)},
		&engine.Error{Module: "m", Err: fmt.Errorf("function %q: %w", "f", engine.ErrFuelExhausted)},
		&engine.Error{Module: "m", Err: &taskerr.CrashError{PID: 7, Func: "f", Exit: "killed by signal SIGKILL", Signal: "SIGKILL",
			Reason: "ran out of memory", Stderr: "fatal error: runtime: out of memory", OutOfMemory: true}},
		&engine.Error{Module: "m", Err: &taskerr.CrashError{PID: 8, Exit: "exit status 2"}},
		&engine.Error{Module: "m", Err: fmt.Errorf("mount /x: %w: %w", engine.ErrBadMount, fs.ErrNotExist)},
		&engine.Error{Module: "m", Err: fmt.Errorf("%w: Task.Stdin: %w", taskerr.ErrNotAllowed, errors.ErrUnsupported)},
		&engine.Error{Module: "m", Err: taskerr.ErrWorkerLost},
		errors.Join(engine.ErrBadModule, context.Canceled),
		errors.New("plain"),
	}
}

func roundTrip(t *testing.T, err error, module string) error {
	t.Helper()
	var enc wire.Encoder
	wire.EncodeError(&enc, err)
	d := wire.NewDecoder(enc.Bytes())
	got := wire.DecodeError(d, module)
	require.NoError(t, d.Finish())
	return got
}

// Every error keeps its identity: the same text, errors.Is for every
// sentinel of the codec, errors.As for every error type with its fields.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	for _, err := range sampleErrors() {
		t.Run(err.Error(), func(t *testing.T) {
			got := roundTrip(t, err, "")
			assert.Equal(t, err.Error(), got.Error())
			for _, s := range wire.Sentinels {
				assert.Equal(t, errors.Is(err, s), errors.Is(got, s), "errors.Is %v", s)
			}
			var trap, trap2 *engine.TrapError
			if errors.As(err, &trap) {
				require.ErrorAs(t, got, &trap2)
				assert.Equal(t, trap, trap2)
			}
			var exit, exit2 *engine.ExitError
			if errors.As(err, &exit) {
				require.ErrorAs(t, got, &exit2)
				assert.Equal(t, exit, exit2)
			}
			var task, task2 *engine.TaskError
			if errors.As(err, &task) {
				require.ErrorAs(t, got, &task2)
				assert.Equal(t, task, task2)
			}
			var crash, crash2 *taskerr.CrashError
			assert.Equal(t, errors.As(err, &crash), errors.As(got, &crash2))
			assert.Equal(t, crash, crash2)
			var ee, ee2 *engine.Error
			if assert.Equal(t, errors.As(err, &ee), errors.As(got, &ee2)) && ee != nil {
				assert.Equal(t, ee.Module, ee2.Module)
				if errors.As(ee.Err, new(*engine.TrapError)) || errors.As(ee.Err, new(*taskerr.CrashError)) {
					assert.Equal(t, ee.Err, ee2.Err, "a typed error alone is rebuilt as itself, not behind a wrapper")
				}
			}
		})
	}
	assert.NoError(t, roundTrip(t, nil, "m"))
}

func TestErrorsAreNamedAsTheReceiverKnowsTheModule(t *testing.T) {
	got := roundTrip(t, &engine.Error{Module: "abc123", Err: engine.ErrOutputLimit}, "upper.wasm")
	assert.Equal(t, `module "upper.wasm": output limit exceeded`, got.Error())
	got = roundTrip(t, errors.New("cluster: no such thing"), "upper.wasm")
	var ee *engine.Error
	require.ErrorAs(t, got, &ee)
	assert.Equal(t, "upper.wasm", ee.Module)
}

func TestErrorTextIsClipped(t *testing.T) {
	long := strings.Repeat("x", 3*wire.MaxErrorText)
	got := roundTrip(t, &engine.Error{Module: "m", Err: &engine.TrapError{Func: "f", Message: long, Stack: long}}, "")
	var trap *engine.TrapError
	require.ErrorAs(t, got, &trap)
	assert.LessOrEqual(t, len(trap.Stack), wire.MaxErrorText+len("…"))
	assert.Less(t, len(got.Error()), 2*wire.MaxErrorText)
}

func TestSentinelsAreDistinct(t *testing.T) {
	assert.LessOrEqual(t, len(wire.Sentinels), 64, "one bit each in a uvarint")
	for i, s := range wire.Sentinels {
		assert.False(t, slices.Contains(wire.Sentinels[:i], s), "%v is listed twice", s)
	}
}

// FuzzEngineDecoders reads arbitrary payloads as each engine value: never a
// panic, never a huge allocation, a clean error or a value.
func FuzzEngineDecoders(f *testing.F) {
	var enc wire.Encoder
	wire.EncodeTask(&enc, &engine.Task{Func: "f", Params: []uint64{1}, Env: map[string]string{"a": "b"}, Input: []byte("x")})
	f.Add(enc.Bytes())
	enc.Reset()
	wire.EncodeResult(&enc, &engine.Result{Output: []byte("o"), Values: []uint64{}})
	f.Add(enc.Bytes())
	for _, err := range sampleErrors() {
		enc.Reset()
		wire.EncodeError(&enc, err)
		f.Add(enc.Bytes())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var task engine.Task
		wire.DecodeTask(wire.NewDecoder(payload), &task)
		var res engine.Result
		wire.DecodeResult(wire.NewDecoder(payload), &res)
		var cfg engine.Config
		wire.DecodeConfig(wire.NewDecoder(payload), &cfg)
		d := wire.NewDecoder(payload)
		if err := wire.DecodeError(d, ""); err != nil && d.Err() == nil {
			_ = err.Error()
		}
	})
}

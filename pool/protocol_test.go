package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

func TestHelloRoundTrip(t *testing.T) {
	in := helloMsg{
		engine: engine.Config{MemoryLimitBytes: 1 << 20, OutputLimitBytes: 4096, CacheDir: "/cache", Interpreter: true,
			Deterministic: &engine.Determinism{WalltimeUnixNano: -5, Seed: 42}, HostModules: []engine.HostModule{{Name: "kv"}, {Name: "log"}}},
		mode: Processes, maxTasks: 7, idleTimeout: time.Second,
		init:       &taskMsg{moduleID: initModuleID, task: engine.Task{Func: "init", Input: []byte("x"), Timeout: time.Minute}},
		initModule: &moduleMsg{id: initModuleID, name: "m.wasm", digest: "abc", wasm: []byte("\x00asm")},
		limits:     childLimits{addressSpace: 1 << 30, cpuSeconds: -1},
	}
	var enc wire.Encoder
	in.encode(&enc)
	var out helloMsg
	require.NoError(t, decodeHello(wire.NewDecoder(enc.Bytes()), &out))
	assert.Equal(t, uint64(protocolVersion), out.version)
	in.version = protocolVersion
	assert.Equal(t, in, out)
}

func TestTaskAndResultRoundTrip(t *testing.T) {
	for _, task := range []engine.Task{
		{Func: "f"},
		{Func: "raw", Params: []uint64{}, Args: []string{"a", ""}, Env: map[string]string{"K": "V", "": "x"},
			Mounts: []engine.Mount{{HostPath: "/h", GuestPath: "/g", ReadOnly: true}}, Timeout: -1},
		{Params: []uint64{1, 1 << 63}, Input: []byte{0, 1}},
	} {
		in := taskMsg{id: 9, moduleID: 3, task: task}
		var enc wire.Encoder
		in.encode(&enc)
		var out taskMsg
		d := wire.NewDecoder(enc.Bytes())
		out.decode(d)
		require.NoError(t, d.Finish())
		assert.Equal(t, in, out)
	}

	in := resultMsg{id: 3, res: engine.Result{Output: []byte("out"), Stderr: []byte("err"), Values: []uint64{7}, ExitCode: 4, Duration: time.Millisecond},
		broken: true, instancesBuilt: 5, workerRestarts: 6, cpu: time.Second}
	var enc wire.Encoder
	in.encode(&enc)
	var out resultMsg
	require.NoError(t, decodeResult(wire.NewDecoder(enc.Bytes()), &out))
	assert.Equal(t, in, out)
}

func TestErrorsRoundTrip(t *testing.T) {
	trap := &engine.TrapError{Kind: engine.TrapUnreachable, Func: "f", Message: "unreachable", Stack: "s", Abort: "panic: boom"}
	for _, err := range []error{
		&engine.Error{Module: "m", Err: trap},
		&engine.Error{Module: "m", Err: &engine.ExitError{Code: 3, Stderr: []byte("bye")}},
		&engine.Error{Module: "m", Err: &engine.TaskError{Message: "no"}},
		&engine.Error{Module: "m", Err: errors.Join(engine.ErrTimeout, errors.New("after 1s"))},
		&engine.Error{Module: "m", Err: errors.Join(engine.ErrCancelled, ErrShutdown)},
		errors.Join(engine.ErrBadModule, context.Canceled),
	} {
		var enc wire.Encoder
		encodeError(&enc, err)
		d := wire.NewDecoder(enc.Bytes())
		got := decodeError(d)
		require.NoError(t, d.Finish())
		assert.Equal(t, err.Error(), got.Error())
		for _, s := range remoteSentinels {
			assert.Equal(t, errors.Is(err, s), errors.Is(got, s), "%v: errors.Is %v", err, s)
		}
		var te *engine.TrapError
		if errors.As(err, &te) {
			var got2 *engine.TrapError
			require.ErrorAs(t, got, &got2)
			assert.Equal(t, te, got2)
		}
		var ee *engine.Error
		assert.Equal(t, errors.As(err, &ee), errors.As(got, &ee))
	}
	var enc wire.Encoder
	encodeError(&enc, nil)
	assert.NoError(t, decodeError(wire.NewDecoder(enc.Bytes())))
}

func TestVersionsTellEachOtherApart(t *testing.T) {
	var enc wire.Encoder
	enc.String(protocolMagic)
	enc.Uvarint(protocolVersion + 1)
	enc.String("whatever a later version sends")
	var r readyMsg
	require.NoError(t, decodeReady(wire.NewDecoder(enc.Bytes()), &r))
	assert.Equal(t, uint64(protocolVersion+1), r.version)

	enc.Reset()
	enc.String("not-wasmpool")
	assert.ErrorContains(t, decodeReady(wire.NewDecoder(enc.Bytes()), &r), "not the wasmpool worker protocol")
}

// FuzzChildFrames decodes arbitrary payloads as each frame a worker process
// can send: a worker process that goes wrong must never panic the pool.
func FuzzChildFrames(f *testing.F) {
	var enc wire.Encoder
	(&resultMsg{id: 1, res: engine.Result{Output: []byte("x"), Values: []uint64{1}},
		err: &engine.Error{Module: "m", Err: &engine.TrapError{Kind: engine.TrapOutOfBounds}}}).encode(&enc)
	f.Add(enc.Bytes())
	enc.Reset()
	(&readyMsg{pid: 1, err: "no"}).encode(&enc)
	f.Add(enc.Bytes())
	enc.Reset()
	(&loadedMsg{id: 2, err: &engine.Error{Module: "m", Err: &engine.ExitError{Code: 1}}}).encode(&enc)
	f.Add(enc.Bytes())
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r resultMsg
		if decodeResult(wire.NewDecoder(payload), &r) == nil && r.err != nil {
			_ = r.err.Error()
		}
		var l loadedMsg
		_ = decodeLoaded(wire.NewDecoder(payload), &l)
		var h readyMsg
		_ = decodeReady(wire.NewDecoder(payload), &h)
	})
}

// FuzzPoolFrames does the same for what the pool sends, as the worker
// process reads it.
func FuzzPoolFrames(f *testing.F) {
	var enc wire.Encoder
	(&taskMsg{id: 1, moduleID: 2, task: engine.Task{Func: "f", Params: []uint64{1}, Env: map[string]string{"a": "b"}}}).encode(&enc)
	f.Add(enc.Bytes())
	enc.Reset()
	(&helloMsg{mode: Threads, init: &taskMsg{}}).encode(&enc)
	f.Add(enc.Bytes())
	f.Fuzz(func(t *testing.T, payload []byte) {
		var tm taskMsg
		tm.decode(wire.NewDecoder(payload))
		var h helloMsg
		_ = decodeHello(wire.NewDecoder(payload), &h)
		var c cancelMsg
		_ = decodeCancel(wire.NewDecoder(payload), &c)
		var m moduleMsg
		_ = decodeModule(payload, &m)
	})
}

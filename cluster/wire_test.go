package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/internal/wire/wiretest"
)

// Every field of engine.Task reaches the worker (but the module, which the
// message names by digest, and the streams, which Submit refuses), and
// every field of engine.Result comes back.
func TestMessagesCarryEveryField(t *testing.T) {
	in := wireTask{ID: "x-1", ReplyTo: "r.x", Started: "s.x", Answer: "a.x", Module: "abc", Name: "m.wasm", Deadline: 5, MaxDeliveries: 2, Lost: 1, Submitter: "x", Job: "j.k.ab", JobTTL: 7}
	unfilled := wiretest.Fill(&in.Task)
	assert.ElementsMatch(t, []string{"Task.Stdin", "Task.Stdout", "Task.Stderr"}, unfilled)
	in.Task.Module = nil
	data, err := encodeTask(&in)
	require.NoError(t, err)
	got, err := decodeTask(data)
	require.NoError(t, err)
	in.V = wireVersion
	assert.Empty(t, wiretest.Lost(in.Task, got.Task))
	assert.Equal(t, in, *got)

	r := wireResult{ID: "x-1", Worker: "w", Err: &engine.Error{Module: "abc", Err: engine.ErrFuelExhausted}}
	wiretest.Fill(&r.Res)
	data, err = encodeResult(&r)
	require.NoError(t, err)
	gotR, err := decodeResult(data, func(id string) string { return "m.wasm" })
	require.NoError(t, err)
	assert.Empty(t, wiretest.Lost(r.Res, gotR.Res))
	assert.Equal(t, `module "m.wasm": fuel exhausted`, gotR.Err.Error(), "named as the submitter knows the module")
	assert.ErrorIs(t, gotR.Err, engine.ErrFuelExhausted)
}

// issue 13: JSON's omitempty turned a raw call of a () -> () export into an
// SDK call on the worker.
func TestEmptyParamsStayEmpty(t *testing.T) {
	for _, params := range [][]uint64{nil, {}} {
		data, err := encodeTask(&wireTask{ID: "x", ReplyTo: "r", Module: "abc", Task: engine.Task{Func: "f", Params: params}})
		require.NoError(t, err)
		got, err := decodeTask(data)
		require.NoError(t, err)
		assert.Equal(t, params == nil, got.Task.Params == nil)
	}
}

func TestMessagesRejectGarbage(t *testing.T) {
	good, err := encodeTask(&wireTask{ID: "x-1", ReplyTo: "r.x", Module: "abc", Task: engine.Task{Input: []byte("hey")}})
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"short":           {0, 0},
		"length past end": {0, 0, 0, 99, 1},
		"truncated input": good[:len(good)-1],
		"not a frame":     []byte("{\"v\":1}"),
	} {
		_, err := decodeTask(bad)
		assert.ErrorIs(t, err, errBadFrame, name)
	}
	var enc wire.Encoder
	enc.Uvarint(wireVersion + 1)
	newer, err := wire.AppendFrame(nil, frameTask, enc.Bytes())
	require.NoError(t, err)
	_, err = decodeTask(newer)
	assert.ErrorIs(t, err, errBadFrame, "a version this worker does not speak")
	assert.ErrorContains(t, err, "version 5")

	res, err := encodeResult(&wireResult{ID: "x-1", Res: engine.Result{Output: []byte("ok")}})
	require.NoError(t, err)
	_, err = decodeTask(res)
	assert.ErrorIs(t, err, errBadFrame, "a result is not a task")
}

// A large result's output and stderr travel in one payload object.
func TestLargeResultSplits(t *testing.T) {
	r := &wireResult{ID: "x", OutputLen: 2}
	out, stderr, err := r.split([]byte("ok!"))
	require.NoError(t, err)
	assert.Equal(t, "ok", string(out))
	assert.Equal(t, "!", string(stderr))
	_, _, err = (&wireResult{ID: "x", OutputLen: 5}).split([]byte("ok"))
	assert.ErrorIs(t, err, errBadFrame)
}

// Errors rebuilt on the submitter match what they matched on the worker,
// the crash of a worker's worker process included.
func TestResultErrorsKeepTheirIdentity(t *testing.T) {
	crash := &taskerr.CrashError{PID: 7, Func: "f", Exit: "killed by signal SIGKILL", Signal: "SIGKILL", OutOfMemory: true}
	data, err := encodeResult(&wireResult{ID: "x", Err: &engine.Error{Module: "abc", Err: crash}, Res: engine.Result{Duration: time.Second}})
	require.NoError(t, err)
	got, err := decodeResult(data, func(string) string { return "m.wasm" })
	require.NoError(t, err)
	var ce *taskerr.CrashError
	require.ErrorAs(t, got.Err, &ce)
	assert.Equal(t, crash, ce)
	assert.ErrorIs(t, got.Err, taskerr.ErrWorkerCrashed)
	assert.ErrorIs(t, got.Err, engine.ErrMemoryLimit)
	assert.True(t, errors.Is(got.Err, engine.ErrMemoryLimit))
}

package cluster

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func TestFramesRoundTripAndRejectGarbage(t *testing.T) {
	in := wireTask{V: wireVersion, ID: "x-1", ReplyTo: "r.x", Module: "abc", InputLen: 3, MaxDeliveries: 2}
	data, err := encodeFrame(in, []byte("hey"))
	require.NoError(t, err)
	got, input, err := decodeTask(data)
	require.NoError(t, err)
	assert.Equal(t, in, *got)
	assert.Equal(t, "hey", string(input))

	for name, bad := range map[string][]byte{
		"empty":           nil,
		"short":           {0, 0},
		"length past end": {0, 0, 0, 99, '{', '}'},
		"not json":        {0, 0, 0, 1, '!'},
		"truncated input": data[:len(data)-1],
	} {
		_, _, err := decodeTask(bad)
		assert.ErrorIs(t, err, errBadFrame, name)
	}
	newer, err := encodeFrame(wireTask{V: wireVersion + 1, ID: "x-2", ReplyTo: "r.x", Module: "abc"})
	require.NoError(t, err)
	_, _, err = decodeTask(newer)
	assert.ErrorIs(t, err, errBadFrame, "a version this worker does not speak")

	r := wireResult{V: wireVersion, ID: "x-1", OutputLen: 2, StderrLen: 1}
	data, err = encodeFrame(r, []byte("ok"), []byte("!"))
	require.NoError(t, err)
	gotR, raw, err := decodeResult(data)
	require.NoError(t, err)
	out, stderr, err := gotR.split(raw)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(out))
	assert.Equal(t, "!", string(stderr))
	_, _, err = gotR.split(raw[:2])
	assert.ErrorIs(t, err, errBadFrame)
}

// Errors rebuilt on the submitter match what they matched on the worker.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	for _, err := range []error{
		&engine.Error{Module: "m", Err: &engine.TrapError{Kind: engine.TrapOutOfBounds, Func: "f", Message: "out of bounds memory access"}},
		&engine.Error{Module: "m", Err: &engine.ExitError{Code: 3, Stderr: []byte("bye")}},
		&engine.Error{Module: "m", Err: &engine.TaskError{Message: "bad input"}},
		&engine.Error{Module: "m", Err: errors.Join(engine.ErrCancelled, pool.ErrShutdown)},
		&engine.Error{Module: "m", Err: ErrWorkerLost},
		&engine.Error{Module: "m", Err: &pool.CrashError{PID: 7, Signal: "SIGKILL", OutOfMemory: true}},
		&engine.Error{Module: "m", Err: fmt.Errorf("mount /x: %w", engine.ErrBadMount)},
		errors.New("plain"),
	} {
		back := encodeError(err).decode("there.wasm")
		require.Error(t, back)
		var ee *engine.Error
		require.ErrorAs(t, back, &ee)
		assert.Equal(t, "there.wasm", ee.Module, "named as the submitter knows it")
		for _, target := range []error{engine.ErrTimeout, engine.ErrCancelled, pool.ErrShutdown, ErrWorkerLost, engine.ErrMemoryLimit, pool.ErrWorkerCrashed, engine.ErrBadMount} {
			assert.Equal(t, errors.Is(err, target), errors.Is(back, target), "%v is %v", err, target)
		}
		var trap, trap2 *engine.TrapError
		if errors.As(err, &trap) {
			require.ErrorAs(t, back, &trap2)
			assert.Equal(t, *trap, *trap2)
		}
		var exit, exit2 *engine.ExitError
		if errors.As(err, &exit) {
			require.ErrorAs(t, back, &exit2)
			assert.Equal(t, *exit, *exit2)
		}
		inner := err
		if errors.As(err, &ee) {
			inner = ee.Err
		}
		assert.Equal(t, inner.Error(), errors.Unwrap(back).Error(), "reads as it did")
	}
	assert.NoError(t, encodeError(nil).decode("m"))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/pool"
)

func TestExitCodeTable(t *testing.T) {
	wrap := func(err error) error { return &engine.Error{Module: "m.wasm", Err: err} }
	cases := []struct {
		err  error
		code int
		kind string
	}{
		{nil, exitOK, ""},
		{errors.New("boom"), exitFailed, kindTask},
		{wrap(&engine.TaskError{Message: "bad input"}), exitFailed, kindTask},
		{usagef("bad flag"), exitUsage, kindTask},
		{&badLineError{line: 1, msg: "x"}, exitUsage, kindBadLine},
		{wrap(engine.ErrNoFunction), exitUsage, kindNoFunction},
		{wrap(engine.ErrBadModule), exitBadModule, kindBadModule},
		{wrap(fmt.Errorf("%w: %w", engine.ErrBadModule, fs.ErrNotExist)), exitUsage, kindBadLine},
		{wrap(&engine.TrapError{Kind: engine.TrapDivideByZero}), exitTrap, kindTrap},
		{wrap(engine.ErrMemoryLimit), exitMemoryLimit, kindMemory},
		{wrap(engine.ErrOutputLimit), exitOutputLimit, kindOutput},
		{wrap(engine.ErrTimeout), exitTimeout, kindTimeout},
		{context.DeadlineExceeded, exitTimeout, kindTimeout},
		{wrap(engine.ErrCancelled), exitCancelled, kindCancelled},
		{wrap(pool.ErrShutdown), exitCancelled, kindCancelled},
		{wrap(&engine.ExitError{Code: 3}), 3, kindExit},
		{wrap(&engine.ExitError{Code: 300}), exitFailed, kindExit},
		{&exitStatus{code: 42}, 42, kindTask},
		{wrap(&pool.CrashError{PID: 7, Signal: "SIGKILL"}), exitCrashed, kindCrash},
		{wrap(&pool.CrashError{PID: 7, OutOfMemory: true}), exitMemoryLimit, kindMemory},
		// An outage's error wraps the deadline of the retries: not a timeout.
		{wrap(fmt.Errorf("%w: the broker did not take the task within 1s: %w", cluster.ErrUnavailable, context.DeadlineExceeded)), exitUnavailable, kindUnavail},
		{wrap(taskerr.Lacks("worker w1", []string{"http"}, nil)), exitCapability, kindCapability},
		{wrap(fmt.Errorf("%w: the task grants nosuch", engine.ErrNoCapability)), exitCapability, kindCapability},
		// No worker has the capability: none refused it, none was there.
		{wrap(fmt.Errorf("%w: it requires capability http: %w", cluster.ErrNoWorker, engine.ErrNoCapability)), exitNoWorker, kindNoWorker},
		{wrap(fmt.Errorf("%w: it requires label gpu=a100", cluster.ErrNoWorker)), exitNoWorker, kindNoWorker},
	}
	for _, c := range cases {
		assert.Equal(t, c.code, exitCode(c.err), "%v", c.err)
		assert.Equal(t, c.kind, errorKind(c.err), "%v", c.err)
	}
	assert.Equal(t, exitFailed, failureStatus(wrap(&engine.ExitError{Code: 3})))
	assert.Equal(t, exitTrap, failureStatus(wrap(&engine.TrapError{})))
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"1048576": 1 << 20, "64MiB": 64 << 20, "256MB": 256e6, "1GiB": 1 << 30, "64k": 64 << 10,
		"1.5GiB": 3 << 29, "512 KiB": 512 << 10, "10b": 10, "2G": 2 << 30, "1TiB": 1 << 40, "2TB": 2e12,
	} {
		got, err := parseSize(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "MiB", "lots", "-1", "1PiB", "1.2.3MB", "99999999999999999999", "99999999TiB"} {
		_, err := parseSize(in)
		assert.Error(t, err, in)
	}
}

func TestParseMount(t *testing.T) {
	m, err := parseMount("data:/data:ro", "/base")
	assert.NoError(t, err)
	assert.Equal(t, engine.Mount{HostPath: "/base/data", GuestPath: "/data", ReadOnly: true}, m)
	m, err = parseMount("/abs:/x", "/base")
	assert.NoError(t, err)
	assert.Equal(t, engine.Mount{HostPath: "/abs", GuestPath: "/x"}, m)
	for _, bad := range []string{"", "a", "a:b", ":/x", "a:/x:rx:y", "a:"} {
		_, err := parseMount(bad, "")
		assert.Error(t, err, bad)
	}
}

func TestParamsAndValues(t *testing.T) {
	x := engine.Export{Name: "f", Params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI64, api.ValueTypeF64},
		Results: []api.ValueType{api.ValueTypeI32, api.ValueTypeF32}}
	p, err := parseParams("-1, 0x10, 2.5", x)
	assert.NoError(t, err)
	assert.Equal(t, []uint64{api.EncodeI32(-1), 16, api.EncodeF64(2.5)}, p)
	_, err = parseParams("1,2", x)
	assert.Error(t, err)
	_, err = parseParams("a,2,3", x)
	assert.Error(t, err)
	assert.Equal(t, "-7 1.5", formatValues([]uint64{api.EncodeI32(-7), api.EncodeF32(1.5)}, x.Results))
}

func TestProgressLine(t *testing.T) {
	p := &progress{total: 10, done: 4, failed: 1}
	line := p.line(2e9)
	assert.Contains(t, line, "4/10")
	assert.Contains(t, line, "1 failed")
	assert.Contains(t, line, "2.0/s")
	assert.Contains(t, line, "ETA 3s")
	p = &progress{total: -1, done: 3}
	assert.Contains(t, p.line(1e9), "3 done")
	p = &progress{total: 2, done: 3} // a total fixed after more had finished
	assert.Contains(t, p.line(1e9), "[========================] 3/2")
}

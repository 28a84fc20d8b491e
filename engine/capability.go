package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// HostFunc is a host function a capability grants: it gets the calling
// task's context and the guest's bytes and returns bytes, never a guest
// pointer. ctx is the task's: it carries the values of the context the task
// was submitted with, ends when the task is stopped (its timeout, a cancel,
// Close), and is valid for this call only. in is the host's own copy, which
// the function may keep. A returned error reaches the guest as an error
// value (its text); a panic fails the task with ErrHostPanic.
type HostFunc func(ctx context.Context, in []byte) ([]byte, error)

// Capability is a named set of host functions over bytes, which a guest
// calls through the wasmpool ABI (the Go SDK's guest.Call). Registering it
// on Config.Capabilities makes it available; a task may call it only if its
// Task.Grants names it. Unlike a HostModule, a guest does not import it, so
// a module using it runs on any host and is told at run time, as an error it
// can handle, when a capability is not granted.
type Capability struct {
	Name  string
	Funcs map[string]HostFunc
}

var (
	// ErrNoCapability means a task's Grants name a capability this engine
	// (or worker) does not provide: the task is refused before it runs.
	ErrNoCapability = errors.New("capability not provided")
	// ErrHostPanic means a capability's host function panicked while a task
	// called it: the task fails, and the host carries on.
	ErrHostPanic = errors.New("host function panicked")
)

// The status capability_call returns to the guest. The result buffer holds
// the output for capOK and the message for every other status.
const (
	capOK         = 0
	capError      = 1 // the host function returned an error
	capNotGranted = 2 // the task does not grant the capability (or the host lacks it)
	capNoFunc     = 3 // the capability has no such function
)

// capabilityResultLimit bounds what one capability call can hand the guest,
// since the result is read with an i32 length.
const capabilityResultLimit = 1<<31 - 1

func buildCapabilities(cfg Config) (map[string]Capability, error) {
	if len(cfg.Capabilities) == 0 {
		return nil, nil
	}
	caps := make(map[string]Capability, len(cfg.Capabilities))
	for i, c := range cfg.Capabilities {
		if c.Name == "" {
			return nil, fmt.Errorf("engine: Capabilities[%d] needs a Name", i)
		}
		if _, dup := caps[c.Name]; dup {
			return nil, fmt.Errorf("engine: Capabilities[%d]: the name %q is used twice", i, c.Name)
		}
		for fn, f := range c.Funcs {
			if f == nil {
				return nil, fmt.Errorf("engine: capability %q: function %q is nil", c.Name, fn)
			}
		}
		caps[c.Name] = c
	}
	return caps, nil
}

// Capabilities returns the names of the capabilities the engine provides,
// sorted.
func (e *Engine) Capabilities() []string {
	names := make([]string, 0, len(e.caps))
	for n := range e.caps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkGrants refuses a task that grants what the engine does not have:
// a typo, or a worker built without the capability, should fail the task
// at once with a clear message, not when (or if) the guest calls it.
func (e *Engine) checkGrants(t *Task) error {
	for _, g := range t.Grants {
		if _, ok := e.caps[g]; !ok {
			have := "none"
			if len(e.caps) > 0 {
				have = strings.Join(e.Capabilities(), ", ")
			}
			return withDetail(ErrNoCapability, nil, "the task grants capability %q, which this host does not provide (it provides: %s)", g, have)
		}
	}
	for name := range t.GrantArgs {
		if !slices.Contains(t.Grants, name) {
			return withDetail(ErrNoCapability, nil, "the task has GrantArgs for capability %q but does not grant it", name)
		}
	}
	return nil
}

// GrantArgs returns the task's Task.GrantArgs for the capability whose host
// function is running under ctx (an HTTP capability's allowed hosts, say),
// or nil outside a capability call.
func GrantArgs(ctx context.Context) []string {
	if ctx.Err() != nil {
		return nil // the call is over (or stopped)
	}
	args, _ := ctx.Value(grantArgsKey{}).([]string)
	return args
}

// grantArgsKey holds, in a host function's context, its capability's
// GrantArgs: in the context rather than the call state, so that goroutines
// of the host function read them without racing the call.
type grantArgsKey struct{}

// abiCapabilityCall is capability_call(name_ptr, name_len, fn_ptr, fn_len,
// in_ptr, in_len) -> status. It copies everything it reads out of guest
// memory before calling the host function, which therefore never sees a
// guest pointer, and keeps the result for capability_result_read.
func abiCapabilityCall(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		stack[0] = api.EncodeI32(capNotGranted)
		return
	}
	st.capResult = nil
	name := string(guestBytes(st, mod, "capability_call", api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	fn := string(guestBytes(st, mod, "capability_call", api.DecodeU32(stack[2]), api.DecodeU32(stack[3])))
	in := slices.Clone(guestBytes(st, mod, "capability_call", api.DecodeU32(stack[4]), api.DecodeU32(stack[5])))
	status, out := st.callCapability(ctx, name, fn, in)
	st.capResult = out
	stack[0] = api.EncodeI32(int32(status))
}

func (st *callState) callCapability(ctx context.Context, name, fn string, in []byte) (int, []byte) {
	c, provided := st.caps[name]
	if !provided || !slices.Contains(st.grants, name) {
		granted := "none"
		if len(st.grants) > 0 {
			granted = strings.Join(st.grants, ", ")
		}
		return capNotGranted, fmt.Appendf(nil, "capability %q is not granted to this task (granted: %s)", name, granted)
	}
	f, ok := c.Funcs[fn]
	if !ok {
		return capNoFunc, fmt.Appendf(nil, "capability %q has no function %q", name, fn)
	}
	if args := st.grantArgs[name]; args != nil {
		ctx = context.WithValue(ctx, grantArgsKey{}, args)
	}
	out, err := st.runHostFunc(ctx, f, name, fn, in)
	if st.cc.halted.Load() {
		// The task was stopped while the function ran (it returned because
		// its ctx ended, most likely): unwind the guest here, as a sleep
		// does, rather than hand it an error to carry on with.
		panic(errStopped)
	}
	if err != nil {
		return capError, []byte(err.Error())
	}
	if len(out) > capabilityResultLimit {
		return capError, fmt.Appendf(nil, "capability %q function %q returned %d bytes, more than a guest can read", name, fn, len(out))
	}
	return capOK, out
}

// runHostFunc contains a panic of the embedder's function to the task that
// called it: the task fails with ErrHostPanic, the process carries on.
func (st *callState) runHostFunc(ctx context.Context, f HostFunc, name, fn string, in []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			st.abort(withDetail(ErrHostPanic, nil, "capability %q function %q panicked: %v", name, fn, v))
			panic(errStopped)
		}
	}()
	return f(ctx, in)
}

func heldCapResult(st *callState) []byte { return st.capResult }

func abiCapabilityResultSize(ctx context.Context, _ api.Module, stack []uint64) {
	hostBytesSize(ctx, stack, heldCapResult)
}

// abiCapabilityResultRead copies the last call's result from its start, as
// input_read does the input.
func abiCapabilityResultRead(ctx context.Context, mod api.Module, stack []uint64) {
	hostBytesRead(ctx, mod, stack, "capability_result_read", heldCapResult)
}

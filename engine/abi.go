package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ABIModule is the name of the host module that implements the guest ABI.
const ABIModule = "wasmpool"

// failureMessageLimit caps what error_write keeps: a failure message is a
// sentence, not a data channel, so a guest cannot use it to flood the host.
const failureMessageLimit = 64 << 10

// callState is the host's side of one task on one instance: the task's input,
// the output it has written, and the first reason the host found to stop it.
// Host functions find it through the context wazero hands them.
type callState struct {
	fn      string
	input   []byte
	output  cappedBuffer
	stderr  cappedBuffer
	failure cappedBuffer
	// fault is the first host-side reason the task failed (ABI misuse, output
	// limit); it wins over whatever error the interrupted guest then returns.
	fault error
	cc    *callContext
	// fuelBudget is the call's Task.Fuel, for the message when it runs out.
	fuelBudget uint64
	// mem is the instance's linear memory, nil while it has none: wazero's
	// Module.Memory returns a typed nil then, which compares unequal to nil.
	mem **limitedMemory

	// The capabilities: the engine's, the task's grants and the last
	// capability call's result.
	caps      map[string]Capability
	grants    []string
	grantArgs map[string][]string
	capResult []byte
}

type callStateKey struct{}

// sleep is the guest's nanosleep (poll_oneoff on a clock, Go's time.Sleep).
// wazero's own sleeps in time.Sleep, deaf to the call's context: a guest
// asleep for an hour held its worker for the hour, whatever its timeout,
// and a pool's Close waited on it. This one ends when the call is stopped,
// and unwinds the guest right there.
func (st *callState) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-st.cc.waitDone():
		panic(errStopped)
	}
}

func stateFrom(ctx context.Context) *callState {
	if x, ok := ctx.(*callCtx); ok { // the common case, without an interface call
		if !x.current() {
			return nil
		}
		return x.c.st
	}
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// abort records why the task failed and stops the call; the host function
// that calls it then unwinds the guest by panicking.
func (st *callState) abort(err error) {
	if st.fault == nil {
		st.fault = err
	}
	st.cc.abort(err)
}

// errABIMisuse is the panic value a host function uses to abort the guest on
// a bad pointer. wazero recovers it into the call's error; the real cause is
// already in callState.fault.
var errABIMisuse = errors.New("wasmpool: guest passed an invalid pointer to the host ABI")

// guestBytes returns the guest memory [ptr, ptr+length), or aborts the task
// with an out-of-bounds trap. Pointers and lengths are i32 on the wire; they
// are read as unsigned so that a negative one is simply out of range, and the
// sum is computed in 64 bits so that it cannot wrap.
func guestBytes(st *callState, mod api.Module, call string, ptr, length uint32) []byte {
	var size uint32
	hasMemory := st.mem != nil && *st.mem != nil
	if hasMemory {
		size = mod.Memory().Size()
	}
	if !hasMemory || uint64(ptr)+uint64(length) > uint64(size) {
		st.abort(&TrapError{
			Kind: TrapOutOfBounds,
			Func: st.fn,
			Message: fmt.Sprintf("%s(ptr=%d, len=%d) reaches past the guest's %d-byte memory",
				call, int32(ptr), int32(length), size),
		})
		panic(errABIMisuse)
	}
	b, _ := mod.Memory().Read(ptr, length)
	return b
}

func defineABI(r wazero.Runtime) wazero.HostModuleBuilder {
	i32 := api.ValueTypeI32
	b := r.NewHostModuleBuilder(ABIModule)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiInputSize), nil, []api.ValueType{i32}).
		WithParameterNames().WithResultNames("size").
		Export("input_size")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiInputRead), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "len").WithResultNames("n").
		Export("input_read")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiOutputWrite), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "len").WithResultNames("status").
		Export("output_write")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiErrorWrite), []api.ValueType{i32, i32}, nil).
		WithParameterNames("ptr", "len").
		Export("error_write")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiCapabilityCall), []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("name_ptr", "name_len", "fn_ptr", "fn_len", "in_ptr", "in_len").WithResultNames("status").
		Export("capability_call")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiCapabilityResultSize), nil, []api.ValueType{i32}).
		WithParameterNames().WithResultNames("size").
		Export("capability_result_size")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiCapabilityResultRead), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "len").WithResultNames("n").
		Export("capability_result_read")
	return b
}

// The guest reads what the host holds for it (the input, a capability
// call's result) in two calls: its size, then a copy from its start.
// Reading is stateless, so a guest (or an SDK helper) may read as often as
// it likes.
func hostBytesSize(ctx context.Context, stack []uint64, held func(*callState) []byte) {
	var n int
	if st := stateFrom(ctx); st != nil {
		n = len(held(st))
	}
	stack[0] = api.EncodeI32(int32(n))
}

func hostBytesRead(ctx context.Context, mod api.Module, stack []uint64, name string, held func(*callState) []byte) {
	st := stateFrom(ctx)
	if st == nil {
		stack[0] = 0
		return
	}
	dst := guestBytes(st, mod, name, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	stack[0] = api.EncodeI32(int32(copy(dst, held(st))))
}

func heldInput(st *callState) []byte { return st.input }

func abiInputSize(ctx context.Context, _ api.Module, stack []uint64) {
	hostBytesSize(ctx, stack, heldInput)
}

func abiInputRead(ctx context.Context, mod api.Module, stack []uint64) {
	hostBytesRead(ctx, mod, stack, "input_read", heldInput)
}

func abiOutputWrite(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		stack[0] = api.EncodeI32(-1)
		return
	}
	ptr, length := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	src := guestBytes(st, mod, "output_write", ptr, length)
	if !st.output.append(src) {
		stack[0] = api.EncodeI32(-1)
		return
	}
	stack[0] = 0
}

func abiErrorWrite(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		return
	}
	ptr, length := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	src := guestBytes(st, mod, "error_write", ptr, length)
	// Past the cap the message is simply cut, not refused as append
	// would: it is still a failure.
	room := st.failure.limit - len(st.failure.buf)
	if room > 0 {
		st.failure.buf = append(st.failure.buf, src[:min(len(src), room)]...)
	}
}

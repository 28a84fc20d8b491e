package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/internal/monotime"
	"github.com/wasmpool/wasmpool/internal/wasmbin"
)

// The host side of instrumented code (internal/wasmbin's Instrument): what
// makes a timeout, a cancel, an Interrupt or a closing runtime stop a guest
// in the middle of its code, and what meters its fuel.
//
// Instrumented code counts down a tick at function entries and loop headers
// and, when it runs out, calls yield. yield is where a running guest gives
// up its P: Go cannot preempt native code, so without it a guest holds its
// P until it returns, no timer fires on that P, and no garbage collection
// can stop the world. yield stops the guest when the call must stop, by
// panicking (wazero unwinds the guest and returns the panic as the call's
// error; classify then reads why the call was stopped), and otherwise lets
// the scheduler run other goroutines and hands out the next tick.
//
// What crosses goroutines: only halted, the deadline and the done channel of
// the call context, all synchronised (atomics, or its mutex). The counters
// the native code reads and writes (the tick and fuel globals, and the
// locals it keeps them in) are touched by the host only on the goroutine
// running the call, before the call, from yield (which that call makes) and
// after it: never while native code runs on another core. So there is no
// native read racing a host write to reason about, and nothing for -race to
// see: a stop from another goroutine waits for the guest's next yield
// (at most about yieldPeriod) instead of being written into its globals.
//
// The tick is in units of (at most) instructions, whose cost varies with the
// code and the machine by an order of magnitude, so it is paced by the
// clock: each instance measures how fast it spends its ticks and sizes the
// next one to last about yieldPeriod, and less when its deadline comes
// sooner. A stop therefore takes effect within about yieldPeriod, wherever
// the guest is; so does a stop-the-world.

const (
	// yieldPeriod is how long a guest runs between yields: the bound on how
	// late a stop, a timer or a stop-the-world is for a running guest, and
	// what a yield costs is weighed against (about a microsecond with the
	// scheduler's turn: 0.1%).
	yieldPeriod = time.Millisecond
	minTick     = 1 << 10
	// maxTick caps a tick whatever the measured pace, so that a guest
	// going from cheap instructions to costly ones (cache misses, bulk
	// memory) still yields within tens of milliseconds.
	maxTick = 1 << 23
)

// errStopped is the panic with which yield unwinds a guest. It is never
// what the caller sees: classify reports why the call was stopped.
var errStopped = errors.New("wasmpool: the call was stopped")

// ticker paces one instance's yields.
type ticker struct {
	tick   int64     // what the last slice was given
	start  time.Time // when it began
	stopAt time.Time // the call's deadline, if any
}

func (t *ticker) reset() { t.tick = wasmbin.InitialTick }

// begin starts a call's first slice and returns its tick.
func (t *ticker) begin(now, stopAt time.Time) int32 {
	t.start, t.stopAt = now, stopAt
	return t.bound(now, t.tick)
}

// next ends the slice that began at t.start and returns the next one's
// tick, sized from the pace of the last.
func (t *ticker) next(now time.Time) int32 {
	tick := t.tick
	if elapsed := now.Sub(t.start); elapsed > 0 {
		tick = tick * int64(yieldPeriod) / int64(elapsed)
	}
	// Adapt quickly downwards, slowly upwards: a slice too long is a late
	// stop, one too short only a yield more.
	tick = min(max(tick, t.tick/16, minTick), t.tick*2, maxTick)
	t.tick = tick
	return t.bound(now, tick)
}

// bound shortens a tick so that the slice ends near the deadline when it
// comes before the slice's end would.
func (t *ticker) bound(now time.Time, tick int64) int32 {
	if !t.stopAt.IsZero() {
		if left := t.stopAt.Sub(now); left < yieldPeriod {
			tick = max(tick*int64(max(left, 0))/int64(yieldPeriod), minTick)
		}
	}
	return int32(min(tick, math.MaxInt32))
}

// yield is the host's half of a tick running out, on the goroutine running
// the call: it panics if the call must stop, else returns the next tick.
func (c *callContext) yield() int32 {
	now := monotime.Now()
	if c.halted.Load() || c.expire(now) || c.parentEnded() {
		panic(errStopped)
	}
	tick := c.ticks.next(now)
	// The scheduler's turn: the goroutines that would stop this guest (a
	// cancel, a timer, a Close), and the other guests' workers, may be
	// waiting for this P.
	runtime.Gosched()
	now = monotime.Now()
	if c.halted.Load() || c.expire(now) || c.parentEnded() {
		panic(errStopped)
	}
	c.ticks.start = now
	return tick
}

// defineInterrupt is the host module instrumented code imports.
func defineInterrupt(r wazero.Runtime) wazero.HostModuleBuilder {
	b := r.NewHostModuleBuilder(wasmbin.InterruptModule)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostYield), nil, []api.ValueType{api.ValueTypeI32}).
		WithResultNames("tick").
		Export(wasmbin.YieldFunc)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostOutOfFuel), nil, nil).
		Export(wasmbin.OutOfFuelFunc)
	return b
}

func hostYield(ctx context.Context, _ api.Module, stack []uint64) {
	st := stateFrom(ctx)
	if st == nil {
		// Not a call of ours (a module called from another's host
		// function, say): nothing to stop, only pace.
		runtime.Gosched()
		stack[0] = api.EncodeI32(wasmbin.InitialTick)
		return
	}
	stack[0] = api.EncodeI32(st.cc.yield())
}

func hostOutOfFuel(ctx context.Context, _ api.Module, _ []uint64) {
	if st := stateFrom(ctx); st != nil {
		st.abort(&limitError{sentinel: ErrFuelExhausted, detail: fuelDetail(st)})
	}
	panic(errStopped)
}

func fuelDetail(st *callState) string {
	return fmt.Sprintf("function %q used up its budget of %d instructions", st.fn, st.fuelBudget)
}

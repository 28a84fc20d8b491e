package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmpool/wasmpool/internal/monotime"
	"github.com/wasmpool/wasmpool/internal/wasmbin"
)

// Instance is one live instance of a module: a warm sandbox that can run many
// export tasks in turn (not concurrently). A thread-like pool keeps one per
// worker and module; anyone embedding the engine can do the same.
//
// An instance that saw any error (trap, timeout, exit, a failure the guest
// reported) is Broken and refuses further calls: its memory may hold the
// half-done state of the failed task, and the next task must not see it.
type Instance struct {
	rt   *Runtime
	task Task     // the settings it was built with (args, env, mounts)
	code *code    // the module's, held until Close: see acquire
	v    *variant // the compiled form it runs: what traces are mapped through
	mod  api.Module
	mem  *limitedMemory
	st   callState
	cc   *callContext // reused by every call: see callContext

	// The instrumentation's counters, between calls (nil for code without
	// them): the tick each call starts with, and the fuel left.
	tickG, fuelG api.MutableGlobal

	fns    map[string]*boundFunc
	stack  []uint64
	calls  int
	broken bool // saw an error, or was closed; Interrupt marks cc instead
	// entered: the call in progress is counted in the runtime's running.
	entered bool
}

// boundFunc is an export looked up once per instance: wazero allocates on
// every lookup, and a warm instance may run millions of tasks.
type boundFunc struct {
	fn      api.Function
	x       Export
	sdkTask bool
}

// newInstance readies an instance of t.Module, holding its code.
func (rt *Runtime) newInstance(ctx context.Context, t Task) (*Instance, error) {
	c, err := rt.e.acquire(ctx, t.Module)
	if err != nil {
		return nil, err
	}
	inst := &Instance{rt: rt, task: t, code: c}
	inst.cc = newCallContext(&inst.st)
	inst.st.cc = inst.cc
	inst.st.mem = &inst.mem
	limit := rt.e.outLimit
	inst.st.output.limit = limit
	inst.st.stderr.limit = limit
	inst.st.failure.limit = failureMessageLimit
	overflow := func() { inst.st.abort(inst.outputLimitError()) }
	inst.st.output.onOverflow = overflow
	inst.st.stderr.onOverflow = overflow
	if t.Func == "" {
		inst.st.output.sink = t.Stdout
		inst.st.stderr.sink = t.Stderr
	}
	rt.mu.Lock()
	rt.live[inst] = struct{}{}
	rt.mu.Unlock()
	return inst, nil
}

func (inst *Instance) outputLimitError() error {
	return &limitError{sentinel: ErrOutputLimit, detail: fmt.Sprintf("the guest wrote more than %s", formatBytes(uint64(inst.rt.e.outLimit)))}
}

// Instantiate builds a warm instance of t.Module with t's arguments,
// environment and mounts, running _initialize for a reactor. Call runs export
// tasks on it; a command cannot be instantiated this way (use Run). The
// instance can run tasks with a Fuel budget if t has one.
func (rt *Runtime) Instantiate(ctx context.Context, t Task) (*Instance, error) {
	if err := checkTask(&t); err != nil {
		return nil, err
	}
	now := monotime.Now()
	return rt.instantiate(ctx, t, deadlineOf(&t, now), now)
}

func (rt *Runtime) instantiate(ctx context.Context, t Task, deadline, now time.Time) (*Instance, error) {
	m := t.Module
	if t.Func == "" {
		return nil, &Error{Module: m.name, Err: withDetail(ErrNoFunction, nil, "a command runs once per instance; use Run")}
	}
	inst, err := rt.newInstance(ctx, t)
	if err != nil {
		return nil, err
	}
	init := ""
	if m.facts().initialize {
		init = "_initialize"
	}
	var (
		tmpl *template
		key  string
	)
	pre := inst.code.preinit
	if pre != nil {
		key = sandboxKey(&t)
		if tmpl = pre.get(key); tmpl != nil {
			init = "" // the template is what _initialize would leave
		}
	}
	err = inst.instantiate(ctx, &t, init, deadline, now)
	if err == nil && pre != nil {
		if tmpl != nil {
			err = inst.restore(pre, tmpl)
		} else if tmpl, err = inst.capture(pre); err == nil {
			pre.put(key, tmpl)
		}
		if err != nil {
			err = fmt.Errorf("pre-initialisation: %w", err)
		}
	}
	if err != nil {
		inst.Close(context.WithoutCancel(ctx))
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrCancelled) && !errors.Is(err, ErrFuelExhausted) {
			// A trap in _initialize is the module's own; a timeout or a
			// cancel reads the same whichever phase of the task it hit.
			err = fmt.Errorf("instantiating: %w", err)
		}
		return nil, &Error{Module: m.name, Err: err}
	}
	inst.st.stderr.take()
	return inst, nil
}

// instantiate creates the wazero instance and runs start (_initialize,
// _start or nothing) on it, as one call stopped by deadline and ctx.
func (inst *Instance) instantiate(ctx context.Context, t *Task, start string, deadline, now time.Time) error {
	var err error
	if cctx, ok := inst.begin(ctx, t, start, deadline, now); ok {
		if err = inst.create(cctx, t); err == nil && start != "" {
			inst.setCounters(t, start != "_initialize")
			err = inst.runStart(cctx, start)
		}
	}
	err = inst.classify(err, t, monotime.Now())
	inst.finish()
	return err
}

// create makes the wazero instance. A module's own start section runs in
// it, under the call's context like the rest.
func (inst *Instance) create(ctx context.Context, t *Task) (err error) {
	// wazero may panic on inputs it does not expect (a memory allocator
	// refusing a minimum, say): never let that reach the caller.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("wazero panicked while instantiating: %v", v)
		}
	}()
	e := inst.rt.e
	v, err := inst.code.variantFor(ctx, e, t.Fuel > 0)
	if err != nil {
		return err
	}
	compiled, err := inst.rt.compiledFor(ctx, inst.code, v)
	if err != nil {
		return err
	}
	cfg, err := inst.moduleConfig(ctx, t)
	if err != nil {
		// moduleConfig fails only on a mount (fsConfig).
		return withDetail(ErrBadMount, err, "%v", err)
	}
	actx := experimental.WithMemoryAllocator(ctx, newMemoryAllocator(e.memLimit, &inst.rt.memories, &inst.mem))
	inst.v = v // before instantiating: a start section's trap is traced from it
	mod, err := inst.rt.r.InstantiateModule(actx, compiled, cfg)
	if mod == nil {
		return err
	}
	inst.mod = mod
	inst.tickG, _ = mod.ExportedGlobal(wasmbin.TickGlobalExport).(api.MutableGlobal)
	inst.fuelG, _ = mod.ExportedGlobal(wasmbin.FuelGlobalExport).(api.MutableGlobal)
	return err
}

// runStart calls a start function the engine runs itself (see
// newBaseConfig).
func (inst *Instance) runStart(ctx context.Context, name string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("wazero panicked while running %s: %v", name, v)
		}
	}()
	fn := inst.mod.ExportedFunction(name)
	if fn == nil {
		return withDetail(ErrNoFunction, nil, "has no exported function %q", name)
	}
	_, err = fn.Call(ctx)
	return err
}

// setCounters gives the instrumented code the call's tick and fuel: the
// task's budget if metered, else as good as none (an instance built for
// fuel also runs tasks without a budget).
func (inst *Instance) setCounters(t *Task, metered bool) {
	if inst.tickG != nil {
		inst.tickG.Set(uint64(uint32(inst.cc.startTick)))
	}
	if inst.fuelG != nil {
		budget := uint64(math.MaxInt64)
		if metered && t.Fuel > 0 {
			budget = min(t.Fuel, math.MaxInt64)
		}
		inst.fuelG.Set(budget)
	}
}

// fuelUsed is what a task with a budget used, after the call ended with
// err: exact when it succeeded, ran out or was stopped; after a trap, what
// it had used when it last yielded or called the host, at least.
func (inst *Instance) fuelUsed(t *Task, err error) uint64 {
	if t.Fuel == 0 || inst.fuelG == nil {
		return 0
	}
	if errors.Is(err, ErrFuelExhausted) {
		return t.Fuel
	}
	budget := min(t.Fuel, math.MaxInt64)
	left := int64(inst.fuelG.Get())
	return uint64(min(max(int64(budget)-left, 0), int64(budget)))
}

// begin readies the call state and the call context for one task, and
// returns the call's context: ok is false if the guest must not run (the
// instance was interrupted, ctx has ended, the runtime is closing; classify
// then says which).
func (inst *Instance) begin(ctx context.Context, t *Task, fn string, deadline, now time.Time) (*callCtx, bool) {
	st := &inst.st
	st.fn = fn
	st.input = t.Input
	st.fault = nil
	st.fuelBudget = t.Fuel
	st.caps = inst.rt.e.caps
	st.grants, st.grantArgs, st.capResult = t.Grants, t.GrantArgs, nil
	if inst.mem != nil {
		inst.mem.hit = false
	}
	cctx, ok := inst.cc.begin(ctx, deadline, t.Timeout, now)
	if ok && !inst.rt.enter() {
		inst.cc.interrupt(ErrClosed)
		return cctx, false
	}
	inst.entered = ok
	return cctx, ok
}

// finish ends the call begun by begin.
func (inst *Instance) finish() {
	inst.cc.end()
	inst.st.input = nil
	inst.st.grants, inst.st.grantArgs, inst.st.capResult = nil, nil, nil
	if inst.entered {
		inst.entered = false
		inst.rt.leave()
	}
}

// Call runs one export task on the instance. t.Module must be the instance's
// module; t.Args, Env and Mounts are those it was built with (see Fits).
func (inst *Instance) Call(ctx context.Context, t Task) (Result, error) {
	if err := checkTask(&t); err != nil {
		return Result{}, err
	}
	now := monotime.Now()
	return inst.call(ctx, t, deadlineOf(&t, now), now)
}

func (inst *Instance) call(ctx context.Context, t Task, deadline, start time.Time) (Result, error) {
	m := inst.task.Module
	if inst.broken || inst.mod == nil {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrInstanceUnusable, nil, "this instance failed earlier and cannot be reused")}
	}
	if t.Module != m {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrInstanceUnusable, nil, "the task is for module %q, not this instance's", t.Module.Name())}
	}
	if m.closed.Load() {
		return Result{}, m.closedError()
	}
	m.touchUse(start)
	if !m.resident.Load() {
		m.e.readmit(m, inst.code)
	}
	if t.Fuel > 0 && inst.fuelG == nil {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrInstanceUnusable, nil, "the task has a fuel budget and this instance was built without fuel metering")}
	}
	if err := inst.rt.e.checkGrants(&t); err != nil {
		return Result{}, &Error{Module: m.name, Err: err}
	}
	bf, err := inst.bind(t.Func, t.Params)
	if err != nil {
		return Result{}, &Error{Module: m.name, Err: err}
	}

	n := max(len(bf.x.Params), len(bf.x.Results))
	if cap(inst.stack) < n {
		inst.stack = make([]uint64, n)
	}
	stack := inst.stack[:n]
	copy(stack, t.Params)

	if cctx, ok := inst.begin(ctx, &t, t.Func, deadline, start); ok {
		inst.setCounters(&t, true)
		err = bf.fn.CallWithStack(cctx, stack)
	}
	end := monotime.Now()
	elapsed := end.Sub(start)
	inst.calls++

	err = inst.classify(err, &t, end)
	inst.finish()
	if err == nil && bf.sdkTask {
		if status := api.DecodeI32(stack[0]); status != 0 {
			err = inst.statusError(t.Func, status)
		}
	}
	failure := inst.st.failure.take()
	res := Result{Output: inst.st.output.take(), Stderr: inst.st.stderr.take(), Duration: elapsed}
	res.Fuel = inst.fuelUsed(&t, err)
	if err != nil {
		inst.broken = true
		var te *TaskError
		if errors.As(err, &te) && len(failure) > 0 {
			te.Message = string(failure)
		}
		if ee, ok := asExit(err); ok {
			res.ExitCode = ee.Code
		}
		return res, &Error{Module: m.name, Err: err}
	}
	if !bf.sdkTask && len(bf.x.Results) > 0 {
		res.Values = append([]uint64(nil), stack[:len(bf.x.Results)]...)
	}
	return res, nil
}

// statusError explains a non-zero status from an SDK task: the memory limit
// if the guest hit it (a guest that cannot grow often fails politely),
// otherwise the guest's own failure.
func (inst *Instance) statusError(fn string, status int32) error {
	if inst.mem != nil && inst.mem.hit {
		return inst.memoryLimitError(fn)
	}
	return &TaskError{Message: fmt.Sprintf("function %q returned status %d", fn, status)}
}

func (inst *Instance) memoryLimitError(fn string) error {
	return &limitError{sentinel: ErrMemoryLimit, detail: fmt.Sprintf(
		"function %q asked for more than %s of memory", fn, formatBytes(inst.mem.limit))}
}

// bind finds the export and decides how to call it: an export with the task
// signature () -> i32 called without Params is an SDK task; anything else is
// a raw call whose Params must match its parameters.
func (inst *Instance) bind(name string, params []uint64) (*boundFunc, error) {
	sdk := params == nil
	if bf, ok := inst.fns[name]; ok && bf.sdkTask == (sdk && bf.x.IsTask()) {
		if !bf.sdkTask && len(params) != len(bf.x.Params) {
			return nil, paramsError(bf.x, len(params))
		}
		return bf, nil
	}
	m := inst.task.Module
	x, ok := m.export(name)
	fn := inst.mod.ExportedFunction(name)
	if !ok || fn == nil {
		return nil, withDetail(ErrNoFunction, nil, "has no exported function %q (exports: %s)", name, m.exportNames())
	}
	bf := &boundFunc{fn: fn, x: x, sdkTask: sdk && x.IsTask()}
	if !bf.sdkTask && len(params) != len(x.Params) {
		return nil, paramsError(x, len(params))
	}
	if inst.fns == nil {
		inst.fns = map[string]*boundFunc{}
	}
	inst.fns[name] = bf
	return bf, nil
}

func paramsError(x Export, got int) error {
	return withDetail(ErrNoFunction, nil, "function %q has signature %s: it takes %d parameter(s), the task gave %d",
		x.Name, x.Signature(), len(x.Params), got)
}

// Fits reports whether t can run on this instance: same module, arguments,
// environment and mounts, the instance is not broken, its module is not
// closed, and it meters fuel if the task has a budget.
func (inst *Instance) Fits(t *Task) bool {
	return !inst.Broken() && inst.mod != nil && !inst.task.Module.closed.Load() &&
		sameSandbox(&inst.task, t) && (t.Fuel == 0 || inst.fuelG != nil)
}

// Stale reports whether the instance's module has left the engine's cache,
// evicted (Config.MaxModules) or closed: the engine releases its code once
// no instance holds it, so whatever keeps instances for reuse should close
// a stale one rather than keep it (see Engine.ModulesDropped). A stale
// instance of an evicted module still runs tasks, and a call on it makes
// the module resident again.
func (inst *Instance) Stale() bool {
	m := inst.task.Module
	return m.closed.Load() || !m.resident.Load()
}

// Broken reports whether the instance saw an error or was interrupted, and
// must be discarded.
func (inst *Instance) Broken() bool { return inst.broken || inst.cc.isBroken() }

// Interrupt stops the instance's call in progress, which then fails with
// ErrCancelled wrapping cause, and breaks the instance: a call that has not
// started yet fails the same way at once. Unlike every other method it may be
// called from any goroutine, while a call runs: it is how a pool stops one
// running task without giving every call a context of its own. Close the
// instance afterwards as usual.
func (inst *Instance) Interrupt(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	inst.cc.interrupt(cause)
}

// Calls is how many tasks the instance has run.
func (inst *Instance) Calls() int { return inst.calls }

// Module is the instance's module.
func (inst *Instance) Module() *Module { return inst.task.Module }

// MemoryBytes is the current size of the instance's linear memory.
func (inst *Instance) MemoryBytes() uint64 {
	// inst.mem, not inst.mod.Memory(): wazero returns a typed nil for a
	// module without a memory, which compares unequal to nil.
	if inst.mod == nil || inst.mem == nil {
		return 0
	}
	return uint64(len(inst.mem.buf))
}

// Close releases the instance, and with it its hold on the module's code.
// Safe to call more than once.
func (inst *Instance) Close(ctx context.Context) error {
	inst.broken = true
	inst.cc.release()
	inst.rt.mu.Lock()
	delete(inst.rt.live, inst)
	inst.rt.mu.Unlock()
	if c := inst.code; c != nil {
		// After the wazero module is closed: the code may be released.
		inst.code = nil
		defer inst.rt.e.release(ctx, c)
	}
	if inst.mod == nil {
		return nil
	}
	mod := inst.mod
	inst.mod = nil
	// wazero's function handles hold their call stacks, which a deep
	// recursion grows to tens of MB: drop them with the module, so that
	// whatever still points at this Instance (a caller, a context's
	// AfterFunc) does not keep them alive.
	inst.fns = nil
	err := mod.Close(ctx)
	if inst.mem != nil {
		// No call can be running (Close is the owner's, after its calls
		// return) and the module is closed: the memory is no one's now.
		inst.rt.memories.put(inst.mem)
		inst.mem = nil
	}
	return err
}

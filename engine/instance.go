package engine

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
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
	task Task // the settings it was built with (args, env, mounts)
	mod  api.Module
	mem  *limitedMemory
	st   callState
	cc   *callContext // reused by every call: see callContext

	fns    map[string]*boundFunc
	stack  []uint64
	calls  int
	broken bool // saw an error, or was closed; Interrupt marks cc instead
}

// boundFunc is an export looked up once per instance: wazero allocates on
// every lookup, and a warm instance may run millions of tasks.
type boundFunc struct {
	fn      api.Function
	x       Export
	sdkTask bool
}

func (rt *Runtime) newInstance(t Task) *Instance {
	inst := &Instance{rt: rt, task: t}
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
	return inst
}

func (inst *Instance) outputLimitError() error {
	return &limitError{sentinel: ErrOutputLimit, detail: fmt.Sprintf("the guest wrote more than %s", formatBytes(uint64(inst.rt.e.outLimit)))}
}

// Instantiate builds a warm instance of t.Module with t's arguments,
// environment and mounts, running _initialize for a reactor. Call runs export
// tasks on it; a command cannot be instantiated this way (use Run).
func (rt *Runtime) Instantiate(ctx context.Context, t Task) (*Instance, error) {
	if err := checkTask(&t); err != nil {
		return nil, err
	}
	m := t.Module
	if t.Func == "" {
		return nil, &Error{Module: m.name, Err: withDetail(ErrNoFunction, nil, "a command runs once per instance; use Run")}
	}
	inst := rt.newInstance(t)
	init := ""
	if m.initialize {
		init = "_initialize"
	}
	var (
		tmpl *template
		key  string
	)
	if m.preinit != nil {
		key = sandboxKey(&t)
		if tmpl = m.preinit.get(key); tmpl != nil {
			init = "" // the template is what _initialize would leave
		}
	}
	var err error
	if inst.begin(ctx, &t, init, time.Now()) {
		err = inst.instantiate(inst.cc, &t, init)
	}
	err = inst.classify(err, &t, time.Now())
	inst.finish()
	if err == nil && m.preinit != nil {
		if tmpl != nil {
			err = inst.restore(m.preinit, tmpl)
		} else if tmpl, err = inst.capture(m.preinit); err == nil {
			m.preinit.put(key, tmpl)
		}
		if err != nil {
			err = fmt.Errorf("pre-initialisation: %w", err)
		}
	}
	if err != nil {
		inst.Close(context.WithoutCancel(ctx))
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrCancelled) {
			// A trap in _initialize is the module's own; a timeout or a
			// cancel reads the same whichever phase of the task it hit.
			err = fmt.Errorf("instantiating: %w", err)
		}
		return nil, &Error{Module: m.name, Err: err}
	}
	inst.st.stderr.take()
	return inst, nil
}

// instantiate creates the wazero instance, running start (if not empty) as
// its start function.
func (inst *Instance) instantiate(ctx context.Context, t *Task, start string) (err error) {
	// wazero may panic on inputs it does not expect (a memory allocator
	// refusing a minimum, say): never let that reach the caller.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("wazero panicked while instantiating: %v", v)
		}
	}()
	e := inst.rt.e
	m := t.Module
	compiled, err := inst.rt.compiledFor(ctx, m)
	if err != nil {
		return err
	}
	cfg, err := inst.moduleConfig(ctx, t, start)
	if err != nil {
		// moduleConfig fails only on a mount (fsConfig).
		return withDetail(ErrBadMount, err, "%v", err)
	}
	ctx = experimental.WithMemoryAllocator(ctx, newMemoryAllocator(e.memLimit, &inst.rt.memories, &inst.mem))
	mod, err := inst.rt.r.InstantiateModule(ctx, compiled, cfg)
	if mod != nil {
		inst.mod = mod
	}
	return err
}

// moduleConfig is the instance's sandbox. ctx is the call's: a streamed
// stdin gives up waiting when it ends.
func (inst *Instance) moduleConfig(ctx context.Context, t *Task, start string) (wazero.ModuleConfig, error) {
	e := inst.rt.e
	// Every With clones the config: start from the engine's prepared base,
	// which holds everything that is the same for every instance.
	cfg := e.baseConfig(start).
		WithArgs(append([]string{t.Module.name}, t.Args...)...).
		WithStderr(&inst.st.stderr)
	if t.Func == "" {
		var stdin io.Reader
		if t.Stdin != nil {
			stdin = newStreamReader(ctx, t.Stdin)
		} else {
			stdin = bytes.NewReader(t.Input)
		}
		cfg = cfg.WithStdout(&inst.st.output).WithStdin(stdin)
	} else {
		// An export's stdout is diagnostics: its result goes through the ABI.
		cfg = cfg.WithStdout(&inst.st.stderr)
	}
	// In name order: the guest's environ must not change from run to run
	// with Go's map order.
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		cfg = cfg.WithEnv(k, t.Env[k])
	}
	if len(t.Mounts) > 0 {
		fsc, err := fsConfig(t.Mounts)
		if err != nil {
			return nil, err
		}
		cfg = cfg.WithFSConfig(fsc)
	}
	if d := e.cfg.Deterministic; d != nil {
		// A fresh source per instance: each one replays the same stream.
		cfg = cfg.WithRandSource(mathrand.New(mathrand.NewSource(d.Seed)))
	} else {
		// The guest's sleeps wake when its call's context ends (see
		// callState.sleep). wazero's hook takes no context, so it is bound
		// to the instance here, not in the engine's base config.
		cfg = cfg.WithNanosleep(inst.st.sleep)
	}
	return cfg, nil
}

// baseConfig returns the part of every instance's sandbox that does not
// depend on the task: no name (anonymous instances never clash, however many
// run at once), the clocks and random source of the engine's Config, and
// start as the start function ("" for none).
func (e *Engine) baseConfig(start string) wazero.ModuleConfig {
	switch start {
	case "":
		return e.bases[0]
	case "_initialize":
		return e.bases[1]
	case "_start":
		return e.bases[2]
	}
	return e.bases[0].WithStartFunctions(start)
}

func newBaseConfigs(cfg Config) [3]wazero.ModuleConfig {
	base := wazero.NewModuleConfig().WithName("")
	if d := cfg.Deterministic; d != nil {
		wall := d.WalltimeUnixNano
		base = base.WithWalltime(func() (int64, int32) { return wall / 1e9, int32(wall % 1e9) }, sys.ClockResolution(1))
	} else {
		// Sleeps are set per instance: see moduleConfig.
		base = base.WithSysWalltime().WithSysNanotime().WithRandSource(cryptorand.Reader)
	}
	return [3]wazero.ModuleConfig{
		base.WithStartFunctions(),
		base.WithStartFunctions("_initialize"),
		base.WithStartFunctions("_start"),
	}
}

// begin readies the call state and the call context for one task, and
// reports whether the guest may run: false if the instance was interrupted or
// ctx has already ended (classify then says which).
func (inst *Instance) begin(ctx context.Context, t *Task, fn string, now time.Time) bool {
	st := &inst.st
	st.fn = fn
	st.input = t.Input
	st.fault = nil
	if inst.mem != nil {
		inst.mem.hit = false
	}
	return inst.cc.begin(ctx, t.Timeout, now)
}

// finish ends the call begun by begin.
func (inst *Instance) finish() {
	inst.cc.end()
	inst.st.input = nil
}

// Call runs one export task on the instance. t.Module must be the instance's
// module; t.Args, Env and Mounts are those it was built with (see Fits).
func (inst *Instance) Call(ctx context.Context, t Task) (Result, error) {
	if err := checkTask(&t); err != nil {
		return Result{}, err
	}
	m := inst.task.Module
	if inst.broken || inst.mod == nil {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrInstanceUnusable, nil, "this instance failed earlier and cannot be reused")}
	}
	if t.Module != m {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrInstanceUnusable, nil, "the task is for module %q, not this instance's", t.Module.Name())}
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

	start := time.Now()
	if inst.begin(ctx, &t, t.Func, start) {
		err = bf.fn.CallWithStack(inst.cc, stack)
	}
	end := time.Now()
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
// environment and mounts, and the instance is not broken.
func (inst *Instance) Fits(t *Task) bool {
	return !inst.Broken() && inst.mod != nil && sameSandbox(&inst.task, t)
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

// Close releases the instance. Safe to call more than once.
func (inst *Instance) Close(ctx context.Context) error {
	inst.broken = true
	inst.cc.release()
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

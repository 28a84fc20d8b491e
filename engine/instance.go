package engine

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand"
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

	fns    map[string]*boundFunc
	stack  []uint64
	calls  int
	broken bool
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
	limit := rt.e.outLimit
	inst.st.output.limit = limit
	inst.st.stderr.limit = limit
	inst.st.failure.limit = failureMessageLimit
	overflow := func() { inst.st.abort(inst.outputLimitError()) }
	inst.st.output.onOverflow = overflow
	inst.st.stderr.onOverflow = overflow
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
	callCtx, finish := inst.begin(ctx, &t, init)
	err := inst.instantiate(callCtx, &t, init)
	err = inst.classify(callCtx, err, &t)
	finish()
	if err != nil {
		inst.Close(context.WithoutCancel(ctx))
		return nil, &Error{Module: m.name, Err: fmt.Errorf("instantiating: %w", err)}
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
	cfg, err := inst.moduleConfig(t, start)
	if err != nil {
		return withDetail(ErrBadModule, err, "%v", err)
	}
	ctx = experimental.WithMemoryAllocator(ctx, newMemoryAllocator(e.memLimit, &inst.mem))
	mod, err := inst.rt.r.InstantiateModule(ctx, compiled, cfg)
	if mod != nil {
		inst.mod = mod
	}
	return err
}

func (inst *Instance) moduleConfig(t *Task, start string) (wazero.ModuleConfig, error) {
	e := inst.rt.e
	cfg := wazero.NewModuleConfig().
		// Anonymous instances never clash, however many run at once.
		WithName("").
		WithArgs(append([]string{t.Module.name}, t.Args...)...).
		WithStderr(&inst.st.stderr)
	if start == "" {
		cfg = cfg.WithStartFunctions()
	} else {
		cfg = cfg.WithStartFunctions(start)
	}
	if t.Func == "" {
		cfg = cfg.WithStdout(&inst.st.output).WithStdin(newInputReader(t.Input))
	} else {
		// An export's stdout is diagnostics: its result goes through the ABI.
		cfg = cfg.WithStdout(&inst.st.stderr)
	}
	for k, v := range t.Env {
		cfg = cfg.WithEnv(k, v)
	}
	if len(t.Mounts) > 0 {
		fsc, err := fsConfig(t.Mounts)
		if err != nil {
			return nil, err
		}
		cfg = cfg.WithFSConfig(fsc)
	}
	if d := e.cfg.Deterministic; d != nil {
		wall := d.WalltimeUnixNano
		cfg = cfg.WithWalltime(func() (int64, int32) { return wall / 1e9, int32(wall % 1e9) }, sys.ClockResolution(1)).
			WithRandSource(mathrand.New(mathrand.NewSource(d.Seed)))
	} else {
		st := &inst.st
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithNanosleep(st.sleep).WithRandSource(cryptorand.Reader)
	}
	return cfg, nil
}

// begin readies the call state for one task and returns the context the
// guest runs under: the task's timeout applied, and a cancel that the host
// uses to stop the guest the moment it exceeds a limit.
func (inst *Instance) begin(ctx context.Context, t *Task, fn string) (context.Context, func()) {
	st := &inst.st
	st.fn = fn
	st.input = t.Input
	st.fault = nil
	if inst.mem != nil {
		inst.mem.hit = false
	}
	var cancelTimeout context.CancelFunc
	if t.Timeout > 0 {
		ctx, cancelTimeout = context.WithTimeoutCause(ctx, t.Timeout, &timeoutCause{t.Timeout})
	}
	ctx, st.stop = context.WithCancelCause(ctx)
	st.done = ctx.Done()
	ctx = context.WithValue(ctx, callStateKey{}, st)
	return ctx, func() {
		st.stop(nil)
		st.stop = nil
		st.done = nil
		st.input = nil
		if cancelTimeout != nil {
			cancelTimeout()
		}
	}
}

// Call runs one export task on the instance. t.Module must be the instance's
// module; t.Args, Env and Mounts are those it was built with (see Fits).
func (inst *Instance) Call(ctx context.Context, t Task) (Result, error) {
	m := inst.task.Module
	if inst.broken || inst.mod == nil {
		return Result{}, &Error{Module: m.name, Err: errors.New("this instance failed earlier and cannot be reused")}
	}
	if t.Module != m {
		return Result{}, &Error{Module: m.name, Err: fmt.Errorf("the task is for module %q, not this instance's", t.Module.Name())}
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

	callCtx, finish := inst.begin(ctx, &t, t.Func)
	start := time.Now()
	err = bf.fn.CallWithStack(callCtx, stack)
	elapsed := time.Since(start)
	inst.calls++

	err = inst.classify(callCtx, err, &t)
	finish()
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
	return !inst.broken && inst.mod != nil && sameSandbox(&inst.task, t)
}

// Broken reports whether the instance saw an error and must be discarded.
func (inst *Instance) Broken() bool { return inst.broken }

// Calls is how many tasks the instance has run.
func (inst *Instance) Calls() int { return inst.calls }

// Module is the instance's module.
func (inst *Instance) Module() *Module { return inst.task.Module }

// MemoryBytes is the current size of the instance's linear memory.
func (inst *Instance) MemoryBytes() uint64 {
	if inst.mod == nil || inst.mod.Memory() == nil {
		return 0
	}
	return uint64(inst.mod.Memory().Size())
}

// Close releases the instance. Safe to call more than once.
func (inst *Instance) Close(ctx context.Context) error {
	inst.broken = true
	if inst.mod == nil {
		return nil
	}
	mod := inst.mod
	inst.mod = nil
	return mod.Close(ctx)
}

// inputReader is a command's stdin: the task's input, read once.
type inputReader struct{ b []byte }

func newInputReader(b []byte) io.Reader { return &inputReader{b: b} }

func (r *inputReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const wasiModule = wasi_snapshot_preview1.ModuleName

// Runtime is one wazero runtime with the host modules installed: WASI, the
// wasmpool ABI and the granted capabilities. The engine has a shared one;
// NewRuntime makes an isolated one, with its own store, for workers that must
// share nothing with other workers. Compiled code comes from the engine's
// cache either way, so a new runtime does not compile from scratch.
type Runtime struct {
	e *Engine
	r wazero.Runtime

	mu       sync.Mutex
	compiled map[*Module]wazero.CompiledModule // nil for the shared runtime
	closed   bool

	memories memoryPool // linear memories of closed instances, for reuse
}

// NewRuntime creates an isolated runtime. Close it when done; Engine.Close
// closes any still open.
func (e *Engine) NewRuntime(ctx context.Context) (*Runtime, error) {
	rt, err := e.newRuntime(ctx)
	if err != nil {
		return nil, err
	}
	rt.compiled = map[*Module]wazero.CompiledModule{}
	return rt, nil
}

func (e *Engine) newRuntime(ctx context.Context) (*Runtime, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.mu.Unlock()

	r := newWazeroRuntime(ctx, e.rtConfig)
	fail := func(err error) (*Runtime, error) {
		_ = r.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return fail(fmt.Errorf("engine: installing WASI: %w", err))
	}
	if _, err := defineABI(r).Instantiate(ctx); err != nil {
		return fail(fmt.Errorf("engine: installing the wasmpool ABI: %w", err))
	}
	for _, h := range e.cfg.HostModules {
		b := r.NewHostModuleBuilder(h.Name)
		if err := safeDefine(h, b); err != nil {
			return fail(err)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fail(fmt.Errorf("engine: host module %q: %w", h.Name, err))
		}
	}
	rt := &Runtime{e: e, r: r}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fail(ErrClosed)
	}
	e.runtimes[rt] = struct{}{}
	return rt, nil
}

// safeDefine runs the embedder's Define, turning a panic into an error: no
// panic escapes the library, even one from a caller's callback.
func safeDefine(h HostModule, b wazero.HostModuleBuilder) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("engine: host module %q: Define panicked: %v", h.Name, v)
		}
	}()
	h.Define(b)
	return nil
}

// Close releases the runtime and every instance in it.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	rt.mu.Unlock()
	rt.e.mu.Lock()
	delete(rt.e.runtimes, rt)
	rt.e.mu.Unlock()
	return rt.r.Close(ctx)
}

func (rt *Runtime) isClosed() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.closed
}

// compiledFor returns m's compiled code in this runtime. An isolated runtime
// compiles on first use, which the shared compilation cache turns into a
// lookup plus decoding.
func (rt *Runtime) compiledFor(ctx context.Context, m *Module) (wazero.CompiledModule, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		// The shared runtime too: wazero's own refusal would read as a trap.
		return nil, ErrClosed
	}
	if rt.compiled == nil {
		return m.compiled, nil
	}
	if c, ok := rt.compiled[m]; ok {
		return c, nil
	}
	c, err := compileModule(ctx, rt.r, m.code)
	if err != nil {
		// Not an *Error: the caller's wraps it, naming the module once.
		return nil, withDetail(ErrBadModule, err, "compiling in a worker runtime: %v", firstLine(err.Error()))
	}
	rt.compiled[m] = c
	return c, nil
}

// Run runs one task in a fresh instance and closes it: nothing of the task
// survives it.
func (rt *Runtime) Run(ctx context.Context, t Task) (Result, error) {
	if err := checkTask(&t); err != nil {
		return Result{}, err
	}
	if t.Func == "" {
		return rt.runCommand(ctx, t)
	}
	if t.Timeout > 0 {
		// The task's timeout covers instantiation too: a reactor whose
		// _initialize loops forever must still be stopped.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.Timeout, &timeoutCause{t.Timeout})
		defer cancel()
	}
	inst, err := rt.Instantiate(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	return inst.Call(ctx, t)
}

func checkTask(t *Task) error {
	if t.Module == nil {
		return fmt.Errorf("engine: the task has no module: %w", ErrBadModule)
	}
	return nil
}

// runCommand runs a WASI command: for a command, instantiating is running,
// since wazero runs _start as part of instantiation.
func (rt *Runtime) runCommand(ctx context.Context, t Task) (Result, error) {
	m := t.Module
	if !m.command {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrNoFunction, nil,
			"is not a WASI command (it has no _start); name one of its functions: %s", m.exportNames())}
	}
	inst := rt.newInstance(t)
	start := time.Now()
	var err error
	if inst.begin(ctx, &t, "_start", start) {
		err = inst.instantiate(inst.cc, &t, "_start")
	}
	end := time.Now()
	elapsed := end.Sub(start)
	err = inst.classify(err, &t, end)
	inst.finish()
	res := Result{Output: inst.st.output.take(), Stderr: inst.st.stderr.take(), Duration: elapsed}
	inst.Close(context.WithoutCancel(ctx))
	if err != nil {
		if ee, ok := asExit(err); ok {
			res.ExitCode = ee.Code
		}
		return res, &Error{Module: m.name, Err: err}
	}
	return res, nil
}

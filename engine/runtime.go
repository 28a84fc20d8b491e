package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmpool/wasmpool/internal/monotime"
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
	compiled map[*variant]wazero.CompiledModule // nil for the shared runtime
	closed   bool
	live     map[*Instance]struct{} // what Close must stop

	// running counts the calls in progress, and closing is set by Close,
	// so that Close can wait for stopped guests to unwind before the code
	// they run is released; drained is signalled when the last one ends
	// while closing. (Atomics rather than mu: every call of every worker
	// sharing a runtime would contend on it.)
	running atomic.Int64
	closing atomic.Bool
	drained chan struct{}

	memories memoryPool // linear memories of closed instances, for reuse
}

// NewRuntime creates an isolated runtime. Close it when done; Engine.Close
// closes any still open.
func (e *Engine) NewRuntime(ctx context.Context) (*Runtime, error) {
	rt, err := e.newRuntime(ctx)
	if err != nil {
		return nil, err
	}
	rt.compiled = map[*variant]wazero.CompiledModule{}
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
	if _, err := defineInterrupt(r).Instantiate(ctx); err != nil {
		return fail(fmt.Errorf("engine: installing the interruption checks: %w", err))
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
	rt := &Runtime{e: e, r: r, live: map[*Instance]struct{}{}, drained: make(chan struct{}, 1)}
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

// Close releases the runtime and every instance in it. Calls still running
// are stopped (they fail with ErrClosed); Close waits for them to unwind,
// which instrumented code does within about a millisecond, until ctx ends or
// for closeGrace at most: a host function that ignores its context could
// otherwise hold it forever.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	live := make([]*Instance, 0, len(rt.live))
	for inst := range rt.live {
		live = append(live, inst)
	}
	rt.mu.Unlock()
	rt.closing.Store(true)
	for _, inst := range live {
		inst.cc.interrupt(ErrClosed)
	}
	if rt.running.Load() > 0 {
		grace := time.NewTimer(closeGrace)
		defer grace.Stop()
	wait:
		for rt.running.Load() > 0 {
			select {
			case <-rt.drained:
			case <-grace.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
	}
	rt.e.mu.Lock()
	delete(rt.e.runtimes, rt)
	rt.e.mu.Unlock()
	err := rt.r.Close(context.WithoutCancel(ctx))
	// Closing the runtime does not release what it compiled: its engine is
	// the compilation cache's, shared with every runtime, and keeps each
	// compiled module until it is closed.
	rt.mu.Lock()
	compiled := rt.compiled
	rt.compiled = nil
	rt.mu.Unlock()
	for _, cm := range compiled {
		err = errors.Join(err, rt.e.closeCompiled(ctx, cm))
	}
	return err
}

// closeGrace bounds how long Close waits for stopped calls to unwind.
const closeGrace = time.Second

// enter registers a call about to run; false if the runtime is closing.
func (rt *Runtime) enter() bool {
	rt.running.Add(1)
	if rt.closing.Load() {
		rt.leave()
		return false
	}
	return true
}

func (rt *Runtime) leave() {
	if rt.running.Add(-1) == 0 && rt.closing.Load() {
		select {
		case rt.drained <- struct{}{}:
		default:
		}
	}
}

func (rt *Runtime) isClosed() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.closed
}

// compiledFor returns a variant of c in this runtime. An isolated runtime
// compiles on first use, which the shared compilation cache turns into a
// lookup plus decoding, and keeps it until c is released (forget).
func (rt *Runtime) compiledFor(ctx context.Context, c *code, v *variant) (wazero.CompiledModule, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		// The shared runtime too: wazero's own refusal would read as a trap.
		return nil, ErrClosed
	}
	if rt == rt.e.shared {
		return v.compiled, nil
	}
	if cm, ok := rt.compiled[v]; ok {
		return cm, nil
	}
	cm, err := compileModule(ctx, rt.r, v.code)
	if err != nil {
		// Not an *Error: the caller's wraps it, naming the module once.
		return nil, withDetail(ErrBadModule, err, "compiling in a worker runtime: %v", firstLine(err.Error()))
	}
	rt.e.openCompiled.Add(1)
	rt.compiled[v] = cm
	c.rtMu.Lock()
	if c.rts == nil {
		c.rts = map[*Runtime]struct{}{}
	}
	c.rts[rt] = struct{}{}
	c.rtMu.Unlock()
	return cm, nil
}

// forget closes what the runtime compiled of c, which is being released.
func (rt *Runtime) forget(ctx context.Context, c *code) {
	c.metered.mu.Lock()
	metered := c.metered.v
	c.metered.mu.Unlock()
	var drop []wazero.CompiledModule
	rt.mu.Lock()
	for _, v := range []*variant{&c.plain, metered} {
		if v == nil {
			continue
		}
		if cm, ok := rt.compiled[v]; ok {
			drop = append(drop, cm)
			delete(rt.compiled, v)
		}
	}
	rt.mu.Unlock()
	for _, cm := range drop {
		_ = rt.e.closeCompiled(ctx, cm)
	}
}

// Run runs one task in a fresh instance and closes it: nothing of the task
// survives it. The task's Timeout bounds all of it, the instantiation (a
// reactor's _initialize) included.
func (rt *Runtime) Run(ctx context.Context, t Task) (Result, error) {
	if err := checkTask(&t); err != nil {
		return Result{}, err
	}
	now := monotime.Now()
	deadline := deadlineOf(&t, now)
	if t.Func == "" {
		return rt.runCommand(ctx, t, deadline, now)
	}
	inst, err := rt.instantiate(ctx, t, deadline, now)
	if err != nil {
		return Result{}, err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	return inst.call(ctx, t, deadline, monotime.Now())
}

// deadlineOf is when a task started at now must be over; zero for none.
func deadlineOf(t *Task, now time.Time) time.Time {
	if t.Timeout <= 0 {
		return time.Time{}
	}
	return now.Add(t.Timeout)
}

func checkTask(t *Task) error {
	if t.Module == nil {
		return fmt.Errorf("engine: the task has no module: %w", ErrBadModule)
	}
	return nil
}

// runCommand runs a WASI command: instantiating it, then its _start.
func (rt *Runtime) runCommand(ctx context.Context, t Task, deadline, start time.Time) (Result, error) {
	m := t.Module
	if !m.facts().command {
		return Result{}, &Error{Module: m.name, Err: withDetail(ErrNoFunction, nil,
			"is not a WASI command (it has no _start); name one of its functions: %s", m.exportNames())}
	}
	if err := rt.e.checkGrants(&t); err != nil {
		return Result{}, &Error{Module: m.name, Err: err}
	}
	inst, err := rt.newInstance(ctx, t)
	if err != nil {
		return Result{}, err
	}
	err = inst.instantiate(ctx, &t, "_start", deadline, start)
	end := monotime.Now()
	res := Result{Output: inst.st.output.take(), Stderr: inst.st.stderr.take(), Duration: end.Sub(start)}
	res.Fuel = inst.fuelUsed(&t, err)
	inst.Close(context.WithoutCancel(ctx))
	if err != nil {
		if ee, ok := asExit(err); ok {
			res.ExitCode = ee.Code
		}
		return res, &Error{Module: m.name, Err: err}
	}
	return res, nil
}

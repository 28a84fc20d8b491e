package workerproc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// Runner runs a worker process's tasks, one at a time: the one-worker pool
// package pool builds inside it, whose instances (warm or fresh, Init,
// MaxTasksPerWorker, IdleTimeout) are the pool's business, not this tier's.
type Runner interface {
	// Run runs t to its end, or until ctx ends.
	Run(ctx context.Context, t engine.Task) Outcome
	// Counters are the runner's instances built and discarded so far.
	Counters() (instancesBuilt, instanceRestarts int64)
	Close() error
}

// Outcome is what Runner.Run returns.
type Outcome struct {
	Result engine.Result
	Err    error
	// Broken says Err is the cause of the pool's Init failing, which breaks
	// the parent pool (or its module in it), not just this task.
	Broken bool
}

// NewRunner builds a worker process's Runner on its engine.
type NewRunner func(e *engine.Engine, cfg PoolConfig) (Runner, error)

// Serve serves as a worker process over stdin and stdout until the pool
// closes stdin, and returns the exit status for the process. host holds
// the host modules and capabilities this program provides (the pool's
// engine names those it needs).
func Serve(host Host, newRunner NewRunner) int {
	out, err := protocolOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wasmpool worker process: %v\n", err)
		return 1
	}
	s := &server{in: wire.NewReader(os.Stdin, wire.MaxPayload), out: wire.NewWriter(out), raw: out,
		hostModules: host.HostModules, capabilities: host.Capabilities, newRunner: newRunner, modules: map[uint64]*engine.Module{},
		outq: make(chan outFrame, 2*MaxBatch)}
	s.wake = sync.NewCond(&s.mu)
	serving.Store(s)
	if err := s.serve(); err != nil {
		fmt.Fprintf(os.Stderr, "wasmpool worker process: %v\n", err)
		return 1
	}
	return 0
}

// Host is what a worker program gives its worker processes' engines: the
// Go functions, which cannot cross from the pool.
type Host struct {
	HostModules  []engine.HostModule
	Capabilities []engine.Capability
}

// server is the worker process's side of the protocol. Its main goroutine
// reads the frames on stdin; one goroutine runs the tasks they bring, in
// order, and another writes the results, as many as are ready in one
// write.
type server struct {
	in          *wire.Reader
	hostModules []engine.HostModule
	// capabilities are the worker program's own: those the pool's engine
	// names are given to this engine.
	capabilities []engine.Capability
	// lacking are those the pool's engine names that this program does not
	// provide: a task granting one is refused by this worker process, in
	// its own name (taskerr.Lacks), for the engine here could not tell
	// that the pool's has it (and whose program to fix).
	lacking   []string
	provided  []string // the others, sorted
	newRunner NewRunner

	outMu sync.Mutex // held by whoever writes to out
	out   *wire.Writer
	raw   io.Writer // under out
	outq  chan outFrame
	wrote chan struct{} // closed when the writer is done

	e       *engine.Engine
	r       Runner
	modules map[uint64]*engine.Module
	enc     wire.Encoder

	mu        sync.Mutex
	wake      *sync.Cond
	queue     []*serverTask // received, not started
	running   *serverTask
	cancelled map[uint64]cancelReason // of tasks still queued
	closed    bool                    // stdin ended: the runner stops
}

type serverTask struct {
	msg    taskMsg
	cancel context.CancelCauseFunc
}

type outFrame struct {
	typ   wire.Type
	parts [][]byte
}

// serving is the server of this worker process, for the tests that make one
// break the protocol on purpose.
var serving atomic.Pointer[server]

// ProtocolWrite writes b as it is on this worker process's protocol stream:
// a test host function uses it to make its worker process break the
// protocol in the middle of a task.
func ProtocolWrite(b []byte) error {
	s := serving.Load()
	if s == nil {
		return errors.New("not a worker process")
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, err := s.raw.Write(b)
	return err
}

func (s *server) serve() error {
	typ, payload, err := s.in.ReadFrame()
	if err != nil {
		return fmt.Errorf("reading the pool's hello: %w", err)
	}
	if typ != frameHello {
		return fmt.Errorf("the pool began with a frame of type %d, not hello", typ)
	}
	var h helloMsg
	ready := readyMsg{pid: os.Getpid()}
	err = decodeHello(wire.NewDecoder(payload), &h)
	switch {
	case err != nil:
		ready.err = fmt.Sprintf("reading the pool's hello: %v", err)
	case h.version != protocolVersion:
		ready.err = fmt.Sprintf("the pool speaks version %d of the worker protocol, this worker program version %d", h.version, protocolVersion)
	default:
		if err := s.setup(&h, &ready); err != nil {
			ready.err = err.Error()
		}
	}
	s.enc.Reset()
	ready.encode(&s.enc)
	if err := s.out.WriteFrame(frameReady, s.enc.Bytes()); err != nil {
		return err
	}
	if ready.err != "" {
		return errors.New(ready.err)
	}
	s.wrote = make(chan struct{})
	go s.writeLoop()
	go s.runLoop()
	ctx := context.Background()
	for {
		typ, payload, err := s.in.ReadFrame()
		if errors.Is(err, io.EOF) {
			// The pool is done with us. A task still running is abandoned:
			// its guest may be stuck where nothing can stop it but the exit.
			if s.stopRunner() {
				_ = s.r.Close()
				_ = s.e.Close(ctx)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading from the pool: %w", err)
		}
		switch typ {
		case frameModule:
			err = s.load(ctx, payload)
		case frameTasks:
			err = s.enqueue(payload)
		case frameCancel:
			err = s.cancel(payload)
		default:
			err = fmt.Errorf("a frame of unknown type %d", typ)
		}
		if err != nil {
			return fmt.Errorf("the pool broke the protocol: %w", err)
		}
	}
}

// setup applies the limits and builds the engine and the runner that hello
// describes. The engine is the pool's own, NoInterrupt included: a timeout
// or a cancel stops the guest here, and the pool kills this process only
// when it does not stop within the grace (a guest stuck in a host
// function, or run with NoInterrupt).
func (s *server) setup(h *helloMsg, ready *readyMsg) error {
	var err error
	if ready.addressSpace, ready.baseline, ready.cpuSeconds, err = setChildLimits(h.limits); err != nil {
		return err
	}
	if ready.addressSpace > 0 {
		// Collect garbage harder near the limit, rather than map more.
		debug.SetMemoryLimit(int64(ready.addressSpace - ready.baseline))
	}
	cfg := h.engine
	var missing []string
	granted := cfg.HostModules
	cfg.HostModules = nil
	for _, want := range granted {
		i := slices.IndexFunc(s.hostModules, func(h engine.HostModule) bool { return h.Name == want.Name })
		if i < 0 {
			missing = append(missing, want.Name)
			continue
		}
		cfg.HostModules = append(cfg.HostModules, s.hostModules[i])
	}
	if len(missing) > 0 {
		return fmt.Errorf("the pool's engine grants host module(s) %s, which this worker program does not: "+
			"pass the same engine.HostModules to pool.ServeChild", strings.Join(missing, ", "))
	}
	named := cfg.Capabilities
	cfg.Capabilities = nil
	for _, want := range named {
		if i := slices.IndexFunc(s.capabilities, func(c engine.Capability) bool { return c.Name == want.Name }); i >= 0 {
			cfg.Capabilities = append(cfg.Capabilities, s.capabilities[i])
			s.provided = append(s.provided, want.Name)
		} else {
			s.lacking = append(s.lacking, want.Name)
		}
	}
	slices.Sort(s.provided)
	ctx := context.Background()
	if s.e, err = engine.New(ctx, cfg); err != nil {
		return err
	}
	pcfg := h.pool
	if h.initModule != nil {
		if err := s.compile(ctx, h.initModule); err != nil {
			return fmt.Errorf("compiling the module of the pool's Init: %w", err)
		}
		pcfg.Init.Module = s.modules[h.initModule.id]
	}
	s.r, err = s.newRunner(s.e, pcfg)
	return err
}

// refusal is the error of a task granting a capability the pool's engine
// has and this program lacks. A grant nobody has is the engine's to refuse,
// as it would in process.
func (s *server) refusal(t *engine.Task) error {
	if len(s.lacking) == 0 {
		return nil // the common case, at no cost per task
	}
	var lacking []string
	for _, g := range t.Grants {
		if slices.Contains(s.lacking, g) {
			lacking = append(lacking, g)
		}
	}
	return taskerr.Lacks(fmt.Sprintf("worker process %d (%s)", os.Getpid(), filepath.Base(os.Args[0])), lacking, s.provided)
}

func (s *server) compile(ctx context.Context, m *moduleMsg) error {
	mod, err := s.e.CompileNamed(ctx, m.name, m.wasm)
	if err != nil {
		return err
	}
	if mod.Digest() != m.digest {
		return fmt.Errorf("module %s arrived with digest %s, not %s", m.name, mod.Digest(), m.digest)
	}
	s.modules[m.id] = mod
	return nil
}

func (s *server) load(ctx context.Context, payload []byte) error {
	var m moduleMsg
	if err := decodeModule(payload, &m); err != nil {
		return err
	}
	if !s.idle() {
		return errors.New("a module arrived while a task was running")
	}
	loaded := loadedMsg{id: m.id, err: s.compile(ctx, &m)}
	var enc wire.Encoder
	loaded.encode(&enc)
	s.outq <- outFrame{typ: frameLoaded, parts: [][]byte{enc.Bytes()}}
	return nil
}

func (s *server) enqueue(payload []byte) error {
	tasks, err := decodeBatch(wire.NewDecoder(payload))
	if err != nil {
		return err
	}
	for i := range tasks {
		mod, ok := s.modules[tasks[i].moduleID]
		if !ok {
			return fmt.Errorf("task %d names module %d, which was never sent", tasks[i].id, tasks[i].moduleID)
		}
		tasks[i].task.Module = mod
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 || s.running != nil {
		return errors.New("a batch of tasks arrived before the last one was done")
	}
	for i := range tasks {
		s.queue = append(s.queue, &serverTask{msg: tasks[i]})
	}
	s.wake.Signal()
	return nil
}

// runLoop runs the queued tasks in order, until stdin ends.
func (s *server) runLoop() {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			close(s.outq)
			return
		}
		t := s.queue[0]
		s.queue = s.queue[1:]
		reason, skip := s.cancelled[t.msg.id]
		delete(s.cancelled, t.msg.id)
		ctx, cancel := context.WithCancelCause(context.Background())
		t.cancel = cancel
		if !skip {
			s.running = t
		}
		s.mu.Unlock()

		var out Outcome
		if skip {
			out.Err = &engine.Error{Module: t.msg.task.Module.Name(), Err: fmt.Errorf("%w before it started", reasonError(reason))}
		} else if err := s.refusal(&t.msg.task); err != nil {
			out.Err = &engine.Error{Module: t.msg.task.Module.Name(), Err: err}
		} else {
			out = s.r.Run(ctx, t.msg.task)
		}
		cancel(nil)
		s.mu.Lock()
		s.running = nil
		s.mu.Unlock()
		s.send(t.msg.id, out)
	}
}

func (s *server) send(id uint64, out Outcome) {
	r := resultMsg{id: id, res: out.Result, err: out.Err, broken: out.Broken, cpu: cpuUsed()}
	r.instancesBuilt, r.workerRestarts = s.r.Counters()
	var enc wire.Encoder
	var scratch [binary.MaxVarintLen64]byte
	parts := r.parts(&enc, &scratch)
	parts[2] = append([]byte(nil), parts[2]...) // scratch is this call's
	s.outq <- outFrame{typ: frameResult, parts: parts}
}

// writeLoop writes the frames to the pool, as many as are ready in one
// write: under load, results go out in batches as the tasks came.
func (s *server) writeLoop() {
	defer close(s.wrote)
	var buf []byte
	for f := range s.outq {
		buf = buf[:0]
		for {
			var err error
			if buf, err = s.put(buf, f); err != nil {
				s.writeFailed(err)
			}
			var more bool
			select {
			case f, more = <-s.outq:
			default:
			}
			if !more {
				break
			}
		}
		if len(buf) > 0 {
			s.outMu.Lock()
			_, err := s.raw.Write(buf)
			s.outMu.Unlock()
			if err != nil {
				s.writeFailed(err)
			}
		}
	}
}

// put adds f to buf, or writes buf and then f from where its parts lie if
// f is large.
func (s *server) put(buf []byte, f outFrame) ([]byte, error) {
	n := 0
	for _, p := range f.parts {
		n += len(p)
	}
	if n < 64<<10 {
		return wire.AppendFrame(buf, f.typ, f.parts...)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if len(buf) > 0 {
		if _, err := s.raw.Write(buf); err != nil {
			return buf[:0], err
		}
	}
	return buf[:0], s.out.WriteFrame(f.typ, f.parts...)
}

func (s *server) writeFailed(err error) {
	// The pool is gone or stuck: nothing more to do here.
	fmt.Fprintf(os.Stderr, "wasmpool worker process: sending a result: %v\n", err)
	os.Exit(1)
}

func reasonError(r cancelReason) error {
	switch r {
	case cancelDeadline:
		return engine.ErrTimeout
	case cancelShutdown:
		return fmt.Errorf("%w: %w", engine.ErrCancelled, taskerr.ErrShutdown)
	}
	return engine.ErrCancelled
}

func (s *server) cancel(payload []byte) error {
	var m cancelMsg
	if err := decodeCancel(wire.NewDecoder(payload), &m); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.running; t != nil && t.msg.id == m.id {
		switch m.reason {
		case cancelDeadline:
			t.cancel(context.DeadlineExceeded)
		case cancelShutdown:
			t.cancel(taskerr.ErrShutdown)
		default:
			t.cancel(context.Canceled)
		}
		return nil
	}
	if slices.ContainsFunc(s.queue, func(t *serverTask) bool { return t.msg.id == m.id }) {
		if s.cancelled == nil {
			s.cancelled = map[uint64]cancelReason{}
		}
		s.cancelled[m.id] = m.reason
	}
	return nil // otherwise it finished as the cancel crossed its result
}

func (s *server) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running == nil && len(s.queue) == 0
}

// stopRunner stops the runner goroutine, and reports whether it was idle
// (then the runner and the engine can be closed).
func (s *server) stopRunner() bool {
	s.mu.Lock()
	idle := s.running == nil && len(s.queue) == 0
	s.closed = true
	s.wake.Signal()
	s.mu.Unlock()
	if idle {
		<-s.wrote
	}
	return idle
}

package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// ServeChild lets this program be its own worker process. Call it as the
// first line of main: when a Subprocess pool starts the program as a worker
// process, ServeChild serves tasks until the pool is done with it, then
// exits the process; otherwise it returns at once, and Subprocess pools in
// this program start it (re-executed with a marker argument) as their
// worker processes.
//
//	func main() {
//		pool.ServeChild()
//		... // the program as usual
//	}
//
// Host modules are Go functions that no pool can send to another process:
// a program whose engine grants host modules passes the same ones here, and
// they run in the worker process (a pool refuses a worker process that does
// not grant every host module its engine does).
//
// Without the call, a Subprocess pool falls back to the wasmpool CLI on PATH
// (which grants no host modules), or to Config.WorkerCommand.
func ServeChild(hostModules ...engine.HostModule) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(RunChild(hostModules...))
	}
	canServeChild.Store(true)
}

// RunChild serves as a worker process over stdin and stdout until the pool
// closes stdin, and returns the exit status for the process: for programs
// that start their worker processes their own way (the wasmpool CLI's
// hidden "worker --child" command calls it). Most programs call ServeChild.
func RunChild(hostModules ...engine.HostModule) int {
	out, err := protocolOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wasmpool worker process: %v\n", err)
		return 1
	}
	s := &childServer{in: wire.NewReader(os.Stdin, wire.MaxPayload), out: wire.NewWriter(out), raw: out,
		hostModules: hostModules, modules: map[uint64]*engine.Module{}}
	serving.Store(s)
	if err := s.serve(); err != nil {
		fmt.Fprintf(os.Stderr, "wasmpool worker process: %v\n", err)
		return 1
	}
	return 0
}

// childServer is the worker process's side of the protocol: an engine and a
// pool of one worker, fed from the frames on stdin.
type childServer struct {
	in          *wire.Reader
	hostModules []engine.HostModule

	outMu sync.Mutex
	out   *wire.Writer
	raw   io.Writer // under out
	enc   wire.Encoder

	e       *engine.Engine
	p       *Pool
	modules map[uint64]*engine.Module

	mu      sync.Mutex
	running *childTask
}

// serving is the server of this worker process, for the tests that make one
// break the protocol on purpose.
var serving atomic.Pointer[childServer]

type childTask struct {
	id     uint64
	cancel context.CancelCauseFunc
}

func (s *childServer) serve() error {
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
	if err := s.write(frameReady, s.enc.Bytes()); err != nil {
		return err
	}
	if ready.err != "" {
		return errors.New(ready.err)
	}
	ctx := context.Background()
	for {
		typ, payload, err := s.in.ReadFrame()
		if errors.Is(err, io.EOF) {
			// The pool is done with us. A task still running is abandoned:
			// its guest may be in a loop nothing can stop but the exit.
			if s.idle() {
				_ = s.p.Close()
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
		case frameTask:
			err = s.run(payload)
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

// setup applies the limits and builds the engine and the pool that hello
// describes. The engine runs guests without interrupt checks: here a
// timeout is enforced by the pool killing this process.
func (s *childServer) setup(h *helloMsg, ready *readyMsg) error {
	var err error
	if ready.addressSpace, ready.baseline, ready.cpuSeconds, err = setChildLimits(h.limits); err != nil {
		return err
	}
	if ready.addressSpace > 0 {
		// Collect garbage harder near the limit, rather than map more.
		debug.SetMemoryLimit(int64(ready.addressSpace - ready.baseline))
	}
	cfg := h.engine
	cfg.NoInterrupt = true
	var missing []string
	granted := cfg.HostModules
	cfg.HostModules = nil
	for _, want := range granted {
		found := false
		for _, h := range s.hostModules {
			if h.Name == want.Name {
				cfg.HostModules = append(cfg.HostModules, h)
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, want.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the pool's engine grants host module(s) %s, which this worker program does not: "+
			"pass the same engine.HostModules to pool.ServeChild", strings.Join(missing, ", "))
	}
	ctx := context.Background()
	if s.e, err = engine.New(ctx, cfg); err != nil {
		return err
	}
	pcfg := Config{Mode: h.mode, Workers: 1, QueueSize: 1, MaxTasksPerWorker: h.maxTasks, IdleTimeout: h.idleTimeout}
	if h.initModule != nil {
		if err := s.compile(ctx, h.initModule); err != nil {
			return fmt.Errorf("compiling the module of the pool's Init: %w", err)
		}
	}
	if h.init != nil {
		init := h.init.task
		if h.init.moduleID != 0 {
			init.Module = s.modules[h.init.moduleID]
		}
		pcfg.Init = &init
	}
	if s.p, err = New(s.e, pcfg); err != nil {
		return err
	}
	return nil
}

func (s *childServer) compile(ctx context.Context, m *moduleMsg) error {
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

func (s *childServer) load(ctx context.Context, payload []byte) error {
	var m moduleMsg
	if err := decodeModule(payload, &m); err != nil {
		return err
	}
	if !s.idle() {
		return errors.New("a module arrived while a task was running")
	}
	loaded := loadedMsg{id: m.id, err: s.compile(ctx, &m)}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.enc.Reset()
	loaded.encode(&s.enc)
	return s.out.WriteFrame(frameLoaded, s.enc.Bytes())
}

func (s *childServer) run(payload []byte) error {
	var m taskMsg
	d := wire.NewDecoder(payload)
	m.decode(d)
	if err := d.Finish(); err != nil {
		return err
	}
	mod, ok := s.modules[m.moduleID]
	if !ok {
		return fmt.Errorf("task %d names module %d, which was never sent", m.id, m.moduleID)
	}
	m.task.Module = mod
	ctx, cancel := context.WithCancelCause(context.Background())
	s.mu.Lock()
	if s.running != nil {
		s.mu.Unlock()
		cancel(nil)
		return fmt.Errorf("task %d arrived while task %d was running", m.id, s.running.id)
	}
	s.running = &childTask{id: m.id, cancel: cancel}
	s.mu.Unlock()
	f := s.p.Submit(ctx, m.task)
	f.OnDone(func(f *future.Future[engine.Result]) {
		res, err := f.Result(context.Background())
		cancel(nil)
		// Idle before the result goes out: the pool may send the next
		// task the moment it has it.
		s.mu.Lock()
		s.running = nil
		s.mu.Unlock()
		if err := s.sendResult(m.id, res, err); err != nil {
			// The pool is gone or stuck: nothing more to do here.
			fmt.Fprintf(os.Stderr, "wasmpool worker process: sending a result: %v\n", err)
			os.Exit(1)
		}
	})
	return nil
}

func (s *childServer) sendResult(id uint64, res engine.Result, err error) error {
	r := resultMsg{id: id, res: res, err: err, cpu: cpuUsed()}
	var b *brokenError
	if errors.As(err, &b) {
		r.broken, r.err = true, b.cause
	}
	st := s.p.Stats()
	r.instancesBuilt, r.workerRestarts = st.InstancesBuilt, st.WorkerRestarts
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.enc.Reset()
	var scratch [binary.MaxVarintLen64]byte
	return s.out.WriteFrame(frameResult, r.parts(&s.enc, &scratch)...)
}

func (s *childServer) cancel(payload []byte) error {
	var m cancelMsg
	if err := decodeCancel(wire.NewDecoder(payload), &m); err != nil {
		return err
	}
	s.mu.Lock()
	t := s.running
	s.mu.Unlock()
	if t == nil || t.id != m.id {
		return nil // it finished as the cancel crossed its result
	}
	switch m.reason {
	case cancelDeadline:
		t.cancel(context.DeadlineExceeded)
	case cancelShutdown:
		t.cancel(ErrShutdown)
	default:
		t.cancel(context.Canceled)
	}
	return nil
}

func (s *childServer) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running == nil
}

func (s *childServer) write(t wire.Type, payload []byte) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.out.WriteFrame(t, payload)
}

package workerproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// child is one worker process, as its pool sees it. Only the worker that
// owns it sends to it and reads msgs; the goroutines started with it read
// its output and reap it.
type child struct {
	cmd  *exec.Cmd
	pid  int
	argv []string

	in  *os.File // its stdin: frames to it
	w   *wire.Writer
	enc wire.Encoder

	msgs   chan childMsg // frames from it, decoded
	exited chan struct{} // closed once it has exited and been reaped
	state  *os.ProcessState
	ioDone sync.WaitGroup // the goroutines reading its stdout and stderr

	stderr stderrLog
	first  prefixRecorder // the first bytes of its stdout, to quote a stranger

	mu        sync.Mutex
	violation error  // it broke the protocol; set before it is killed
	killedFor string // why the pool killed it on purpose, if it did
	stopping  bool   // the pool asked it to exit

	// awaiting is how many answers (loaded, result) the pool is owed: a
	// frame that comes when none is breaks the protocol.
	awaiting atomic.Int64

	ready   readyMsg
	modules map[*engine.Module]uint64 // modules it holds, by the id tasks use
	lastID  uint64
	// What it last reported: its CPU time, and its pool's counters.
	cpu                            time.Duration
	instancesBuilt, workerRestarts int64
}

// childMsg is a frame from a child, decoded: exactly one field is set.
type childMsg struct {
	ready  *readyMsg
	loaded *loadedMsg
	result *resultMsg
}

// handshakeTimeout bounds how long a new worker process may take to answer
// hello: starting a program and its runtime, and compiling Init's module.
const handshakeTimeout = time.Minute

// maxResultPayload is the largest frame the pool accepts from a child: a
// task's output and its stderr, each capped by the engine, plus room for
// the rest (errors are clipped to maxErrorText per string).
func maxResultPayload(outputLimit int) int {
	return 2*outputLimit + 1<<20
}

// startChild starts a worker process and completes the handshake. stop
// aborts a handshake in progress (the pool is closing).
func (sv *Supervisor) startChild(stop <-chan struct{}) (*child, error) {
	c := &child{argv: sv.argv, msgs: make(chan childMsg, MaxBatch), exited: make(chan struct{}), modules: map[*engine.Module]uint64{}}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, sv.startError(c, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, sv.startError(c, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, sv.startError(c, err)
	}
	c.cmd = exec.Command(sv.argv[0], sv.argv[1:]...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, errW
	c.cmd.SysProcAttr = childSysProcAttr()
	err = sv.spawn(c.cmd)
	// The child has its own copies of its ends (or never will): ours must
	// go, or we would never see end-of-file when it exits.
	closeAll(inR, outW, errW)
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, sv.startError(c, err)
	}
	c.pid = c.cmd.Process.Pid
	c.in = inW
	c.w = wire.NewWriter(inW)
	sv.track(c, true)
	go func() {
		_ = c.cmd.Wait()
		c.state = c.cmd.ProcessState
		sv.track(c, false)
		close(c.exited)
	}()
	c.ioDone.Add(2)
	go c.readStderr(errR)
	go c.readFrames(outR, sv.maxPayload)

	if err := c.handshake(sv, stop); err != nil {
		c.kill("")
		c.reap()
		return nil, err
	}
	return c, nil
}

func (sv *Supervisor) startError(c *child, err error) error {
	return fmt.Errorf("starting a worker process (%s): %w", strings.Join(c.argv, " "), err)
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

func (c *child) handshake(sv *Supervisor, stop <-chan struct{}) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("worker process %d (%s) %s", c.pid, strings.Join(c.argv, " "), fmt.Sprintf(format, args...))
	}
	_ = c.in.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	err := c.w.WriteFrame(frameHello, sv.hello)
	_ = c.in.SetWriteDeadline(time.Time{})
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// It did not read: it has probably exited, and says why below.
		select {
		case <-c.exited:
		case <-time.After(time.Second):
		}
	}
	timer := time.NewTimer(handshakeTimeout)
	defer timer.Stop()
	select {
	case m := <-c.msgs:
		r := m.ready
		if r == nil {
			return fail("did not begin with the handshake")
		}
		if r.version != protocolVersion {
			return fail("speaks version %d of the worker protocol, and this program version %d: use a worker program built from the same wasmpool version", r.version, protocolVersion)
		}
		if r.err != "" {
			return fail("could not start: %s", r.err)
		}
		c.ready = *r
		return nil
	case <-c.exited:
		c.ioDone.Wait()
		if v := c.protocolViolation(); v != nil {
			return fail("does not speak the wasmpool worker protocol (%v)%s", v, c.first.quote())
		}
		desc, _, _ := exitDescription(c.state)
		msg := fail("ended before the handshake (%s)", desc)
		if last := c.stderr.lastWords(); last != "" {
			msg = fmt.Errorf("%w; its last words on stderr: %s", msg, strings.ReplaceAll(last, "\n", " | "))
		} else if c.first.n > 0 {
			msg = fmt.Errorf("%w; instead of the handshake it wrote%s", msg, c.first.quote())
		}
		return msg
	case <-timer.C:
		return fail("did not answer the handshake within %v", handshakeTimeout)
	case <-stop:
		return fail("was not ready when the pool closed")
	}
}

// readFrames decodes the child's frames into msgs. A frame that breaks the
// protocol (garbage, an oversized or malformed frame) kills the child: the
// worker then sees it exit and replaces it.
func (c *child) readFrames(out *os.File, maxPayload int) {
	defer c.ioDone.Done()
	defer out.Close()
	r := wire.NewReader(io.TeeReader(out, &c.first), maxPayload)
	handshaken := false
	for {
		typ, payload, err := r.ReadFrame()
		if err != nil {
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
				c.breaksProtocol(err)
			}
			// Otherwise it exited (end of file, perhaps mid-frame): the
			// waiter says how.
			return
		}
		var m childMsg
		switch {
		case !handshaken && typ == frameReady:
			m.ready = &readyMsg{}
			err = decodeReady(wire.NewDecoder(payload), m.ready)
			handshaken = true
		case handshaken && (typ == frameLoaded || typ == frameResult) && c.awaiting.Add(-1) < 0:
			err = errors.New("it sent a frame it was not asked for")
		case handshaken && typ == frameLoaded:
			m.loaded = &loadedMsg{}
			err = decodeLoaded(wire.NewDecoder(payload), m.loaded)
		case handshaken && typ == frameResult:
			m.result = &resultMsg{}
			err = decodeResult(wire.NewDecoder(payload), m.result)
		default:
			err = fmt.Errorf("an unexpected frame of type %d", typ)
		}
		if err != nil {
			c.breaksProtocol(err)
			return
		}
		select {
		case c.msgs <- m:
		case <-c.exited:
			return
		}
	}
}

// breaksProtocol records why the child is being killed, then kills it.
func (c *child) breaksProtocol(err error) {
	c.mu.Lock()
	if c.violation == nil {
		c.violation = err
	}
	c.mu.Unlock()
	_ = c.cmd.Process.Kill()
}

func (c *child) protocolViolation() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.violation
}

// kill kills the child (it is reaped by its waiter); reason says why, for
// the record, or "" for a child that failed its handshake.
func (c *child) kill(reason string) {
	c.mu.Lock()
	if c.killedFor == "" {
		c.killedFor = reason
	}
	c.mu.Unlock()
	_ = c.cmd.Process.Kill()
}

// onPurpose reports whether the pool asked the child to exit or killed it:
// its death is then no crash.
func (c *child) onPurpose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping || c.killedFor != ""
}

// reap waits until the child has exited and its output is read to the end.
func (c *child) reap() {
	<-c.exited
	c.ioDone.Wait()
	_ = c.in.Close()
}

// stop asks the child to exit by closing its stdin, which it reads as the
// end of its work, and kills it if it has not within grace.
func (c *child) stop(grace time.Duration) {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	_ = c.in.Close()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.exited:
	case <-timer.C:
		c.kill("it did not exit when asked to")
	}
	c.reap()
}

func (c *child) readStderr(r *os.File) {
	defer c.ioDone.Done()
	defer r.Close()
	_, _ = io.Copy(&c.stderr, r)
}

// crashError explains the death of a child that the pool did not kill on
// purpose, while it ran function fn ("" if idle). The child must be reaped.
func (c *child) crashError(fn string) *taskerr.CrashError {
	desc, sig, _ := exitDescription(c.state)
	ce := &taskerr.CrashError{PID: c.pid, Func: fn, Exit: desc, Signal: sig, Stderr: c.stderr.lastWords()}
	switch {
	case c.protocolViolation() != nil:
		ce.Reason = fmt.Sprintf("broke the worker protocol (%v) and was killed", c.protocolViolation())
		if q := c.first.quote(); q != "" && c.first.n < 64 && !c.first.framed() {
			ce.Reason += "; it wrote" + q
		}
	case outOfMemory(ce.Stderr):
		ce.OutOfMemory = true
		ce.Reason = "ran out of memory"
		if c.ready.addressSpace > 0 {
			ce.Reason += fmt.Sprintf(" (its address-space limit is %s, of which %s was mapped at startup)",
				formatSize(c.ready.addressSpace), formatSize(c.ready.baseline))
		}
	case sig == "SIGKILL" && c.ready.cpuSeconds > 0 && c.state != nil &&
		c.state.UserTime()+c.state.SystemTime() >= time.Duration(c.ready.cpuSeconds)*time.Second-time.Second/2:
		ce.Reason = fmt.Sprintf("was killed by the kernel at its CPU time limit of %ds (RLIMIT_CPU; see ProcessLimits.CPUTime)", c.ready.cpuSeconds)
	case sig == "SIGKILL":
		ce.Reason = "was killed (by the kernel's out-of-memory killer, or by another process)"
	}
	return ce
}

func formatSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

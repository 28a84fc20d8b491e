package pool

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// The worker-process protocol: frames (package wire) over the child's stdin
// (pool to child) and stdout (child to pool); the child's stderr is left for
// its diagnostics. The pool sends hello and waits for ready; then, one at a
// time, a module it has not sent that child yet (answered by loaded) or a
// task (answered by result), and possibly a cancel for the running task.
// Closing the child's stdin asks it to exit.
const (
	protocolMagic = "wasmpool-worker"
	// protocolVersion changes with any change to a message below. hello and
	// ready begin with the magic and the version in every version, so two
	// versions can always tell each other apart.
	protocolVersion = 1
)

const (
	frameHello  wire.Type = 1 // pool → child: helloMsg
	frameModule wire.Type = 2 // pool → child: moduleMsg
	frameTask   wire.Type = 3 // pool → child: taskMsg
	frameCancel wire.Type = 4 // pool → child: cancelMsg

	frameReady  wire.Type = 101 // child → pool: readyMsg
	frameLoaded wire.Type = 102 // child → pool: loadedMsg
	frameResult wire.Type = 103 // child → pool: resultMsg
)

// helloMsg configures a child: its engine, its one-worker pool and its limits.
type helloMsg struct {
	version     uint64
	engine      engine.Config // HostModules carries names only
	mode        Mode
	maxTasks    int
	idleTimeout time.Duration
	init        *taskMsg   // the pool's Init, if any
	initModule  *moduleMsg // Init's own module, if it has one
	limits      childLimits
}

// childLimits are the rlimits a child sets on itself: -1 means none.
type childLimits struct {
	addressSpace int64 // bytes the child may map beyond what it had mapped at startup
	cpuSeconds   int64 // CPU seconds over the child's life
}

// readyMsg answers hello: the child is serving, or says why it cannot.
type readyMsg struct {
	version uint64
	pid     int
	err     string
	// What the child enforces on itself (0: none): the address-space limit
	// it set and what it had mapped when it set it, and its CPU limit.
	addressSpace, baseline uint64
	cpuSeconds             int64
}

// moduleMsg hands a child a module, under an id the pool's tasks then use.
type moduleMsg struct {
	id     uint64
	name   string
	digest string
	wasm   []byte
	m      *engine.Module // pool side: written from the module, not copied
}

type loadedMsg struct {
	id  uint64
	err error
}

// taskMsg is an engine.Task with its module replaced by the id the child
// knows it by (0: none).
type taskMsg struct {
	id       uint64
	moduleID uint64
	task     engine.Task
}

// cancelMsg asks the child to stop the running task, for a reason that
// becomes the cause of its ErrCancelled or ErrTimeout.
type cancelMsg struct {
	id     uint64
	reason cancelReason
}

type cancelReason byte

const (
	cancelCanceled cancelReason = iota + 1 // context.Canceled, Future.Cancel
	cancelDeadline                         // the task's context passed its deadline
	cancelShutdown                         // Close or an expired Shutdown
)

type resultMsg struct {
	id  uint64
	res engine.Result
	err error
	// broken: err is the cause of the pool's Init failing, which breaks
	// the whole pool, not just this child.
	broken bool
	// The child's own counters, absolute: the pool adds what changed.
	instancesBuilt, workerRestarts int64
	cpu                            time.Duration // CPU time the child has used so far
}

func (m *helloMsg) encode(enc *wire.Encoder) {
	enc.String(protocolMagic)
	enc.Uvarint(protocolVersion)
	c := &m.engine
	enc.Uvarint(c.MemoryLimitBytes)
	enc.Uvarint(uint64(max(c.OutputLimitBytes, 0)))
	enc.String(c.CacheDir)
	enc.Bool(c.Interpreter)
	enc.Bool(c.Deterministic != nil)
	if d := c.Deterministic; d != nil {
		enc.Varint(d.WalltimeUnixNano)
		enc.Varint(d.Seed)
	}
	enc.Uvarint(uint64(len(c.HostModules)))
	for _, h := range c.HostModules {
		enc.String(h.Name)
	}
	enc.Uvarint(uint64(m.mode))
	enc.Uvarint(uint64(m.maxTasks))
	enc.Varint(int64(m.idleTimeout))
	enc.Bool(m.init != nil)
	if m.init != nil {
		m.init.encode(enc)
	}
	enc.Bool(m.initModule != nil)
	if m.initModule != nil {
		m.initModule.encodeHead(enc)
		enc.ByteString(m.initModule.bytes())
	}
	enc.Varint(m.limits.addressSpace)
	enc.Varint(m.limits.cpuSeconds)
}

// decodeVersion reads the magic and the version that begin hello and ready.
func decodeVersion(d *wire.Decoder) (uint64, error) {
	if magic := d.String(); magic != protocolMagic || d.Err() != nil {
		return 0, fmt.Errorf("not the wasmpool worker protocol (magic %q)", clip(magic))
	}
	return d.Uvarint(), d.Err()
}

func decodeHello(d *wire.Decoder, m *helloMsg) error {
	var err error
	if m.version, err = decodeVersion(d); err != nil || m.version != protocolVersion {
		return err
	}
	c := &m.engine
	c.MemoryLimitBytes = d.Uvarint()
	c.OutputLimitBytes = int(min(d.Uvarint(), 1<<31-1))
	c.CacheDir = d.String()
	c.Interpreter = d.Bool()
	if d.Bool() {
		c.Deterministic = &engine.Determinism{WalltimeUnixNano: d.Varint(), Seed: d.Varint()}
	}
	n := d.Count(1)
	for range n {
		c.HostModules = append(c.HostModules, engine.HostModule{Name: d.String()})
	}
	m.mode = Mode(min(d.Uvarint(), 255))
	m.maxTasks = int(min(d.Uvarint(), 1<<31-1))
	m.idleTimeout = time.Duration(d.Varint())
	if d.Bool() {
		m.init = &taskMsg{}
		m.init.decode(d)
	}
	if d.Bool() {
		m.initModule = &moduleMsg{}
		m.initModule.decodeHead(d)
		m.initModule.wasm = d.ByteString()
	}
	m.limits.addressSpace = d.Varint()
	m.limits.cpuSeconds = d.Varint()
	return d.Finish()
}

func (m *readyMsg) encode(enc *wire.Encoder) {
	enc.String(protocolMagic)
	enc.Uvarint(protocolVersion)
	enc.Uvarint(uint64(m.pid))
	enc.String(m.err)
	enc.Uvarint(m.addressSpace)
	enc.Uvarint(m.baseline)
	enc.Varint(m.cpuSeconds)
}

func decodeReady(d *wire.Decoder, m *readyMsg) error {
	var err error
	if m.version, err = decodeVersion(d); err != nil || m.version != protocolVersion {
		return err
	}
	m.pid = int(min(d.Uvarint(), 1<<31-1))
	m.err = d.String()
	m.addressSpace = d.Uvarint()
	m.baseline = d.Uvarint()
	m.cpuSeconds = d.Varint()
	return d.Finish()
}

func (m *moduleMsg) bytes() []byte {
	if m.wasm == nil && m.m != nil {
		b := make([]byte, 0, m.m.Size())
		w := appendWriter{&b}
		_, _ = m.m.WriteTo(w)
		m.wasm = b
	}
	return m.wasm
}

type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// encodeHead encodes all but the bytes, which end the frame: they are
// written from the module as they are.
func (m *moduleMsg) encodeHead(enc *wire.Encoder) {
	enc.Uvarint(m.id)
	enc.String(m.name)
	enc.String(m.digest)
}

func (m *moduleMsg) decodeHead(d *wire.Decoder) {
	m.id = d.Uvarint()
	m.name = d.String()
	m.digest = d.String()
}

// decodeModule reads a module frame: the head, then the bytes to its end.
func decodeModule(payload []byte, m *moduleMsg) error {
	d := wire.NewDecoder(payload)
	m.decodeHead(d)
	if err := d.Err(); err != nil {
		return err
	}
	m.wasm = payload[len(payload)-d.Remaining():]
	return nil
}

func (m *loadedMsg) encode(enc *wire.Encoder) {
	enc.Uvarint(m.id)
	encodeError(enc, m.err)
}

func decodeLoaded(d *wire.Decoder, m *loadedMsg) error {
	m.id = d.Uvarint()
	m.err = decodeError(d)
	return d.Finish()
}

func (m *taskMsg) encode(enc *wire.Encoder) {
	m.encodeHead(enc)
	enc.Append(m.task.Input)
}

// encodeHead encodes all but the input's bytes, which end the message: a
// large input is written to the pipe from where it lies, never copied into
// (and kept by) the encoder's buffer.
func (m *taskMsg) encodeHead(enc *wire.Encoder) {
	t := &m.task
	enc.Uvarint(m.id)
	enc.Uvarint(m.moduleID)
	enc.String(t.Func)
	// nil Params and empty Params differ: nil calls an SDK task.
	enc.Bool(t.Params != nil)
	if t.Params != nil {
		enc.Uvarint(uint64(len(t.Params)))
		for _, p := range t.Params {
			enc.Fixed64(p)
		}
	}
	enc.Uvarint(uint64(len(t.Args)))
	for _, a := range t.Args {
		enc.String(a)
	}
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	enc.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		enc.String(k)
		enc.String(t.Env[k])
	}
	enc.Uvarint(uint64(len(t.Mounts)))
	for _, mt := range t.Mounts {
		enc.String(mt.HostPath)
		enc.String(mt.GuestPath)
		enc.Bool(mt.ReadOnly)
	}
	enc.Varint(int64(t.Timeout))
	enc.Uvarint(uint64(len(t.Input)))
}

func (m *taskMsg) decode(d *wire.Decoder) {
	t := &m.task
	m.id = d.Uvarint()
	m.moduleID = d.Uvarint()
	t.Func = d.String()
	if d.Bool() {
		n := d.Count(8)
		t.Params = make([]uint64, n)
		for i := range t.Params {
			t.Params[i] = d.Fixed64()
		}
	}
	if n := d.Count(1); n > 0 {
		t.Args = make([]string, n)
		for i := range t.Args {
			t.Args[i] = d.String()
		}
	}
	if n := d.Count(2); n > 0 {
		t.Env = make(map[string]string, n)
		for range n {
			k := d.String()
			t.Env[k] = d.String()
		}
	}
	if n := d.Count(3); n > 0 {
		t.Mounts = make([]engine.Mount, n)
		for i := range t.Mounts {
			t.Mounts[i] = engine.Mount{HostPath: d.String(), GuestPath: d.String(), ReadOnly: d.Bool()}
		}
	}
	t.Timeout = time.Duration(d.Varint())
	t.Input = d.ByteString()
}

func (m *cancelMsg) encode(enc *wire.Encoder) {
	enc.Uvarint(m.id)
	enc.Byte(byte(m.reason))
}

func decodeCancel(d *wire.Decoder, m *cancelMsg) error {
	m.id = d.Uvarint()
	m.reason = cancelReason(d.Byte())
	return d.Finish()
}

func (m *resultMsg) encode(enc *wire.Encoder) {
	m.encodeHead(enc)
	enc.Append(m.res.Stderr)
	enc.ByteString(m.res.Output)
}

// parts is the message as the parts of a frame: the fields encoded in enc,
// then the stderr and the output as they lie (they can be megabytes).
func (m *resultMsg) parts(enc *wire.Encoder, scratch *[binary.MaxVarintLen64]byte) [][]byte {
	m.encodeHead(enc)
	outLen := binary.AppendUvarint(scratch[:0], uint64(len(m.res.Output)))
	return [][]byte{enc.Bytes(), m.res.Stderr, outLen, m.res.Output}
}

// encodeHead encodes all but the stderr's bytes and the output, which end
// the message.
func (m *resultMsg) encodeHead(enc *wire.Encoder) {
	r := &m.res
	enc.Uvarint(m.id)
	enc.Bool(r.Values != nil)
	if r.Values != nil {
		enc.Uvarint(uint64(len(r.Values)))
		for _, v := range r.Values {
			enc.Fixed64(v)
		}
	}
	enc.Uvarint(uint64(r.ExitCode))
	enc.Varint(int64(r.Duration))
	encodeError(enc, m.err)
	enc.Bool(m.broken)
	enc.Varint(m.instancesBuilt)
	enc.Varint(m.workerRestarts)
	enc.Varint(int64(m.cpu))
	enc.Uvarint(uint64(len(r.Stderr)))
}

// decodeResult reads a result. Output, Stderr and Values alias the payload,
// which the caller owns.
func decodeResult(d *wire.Decoder, m *resultMsg) error {
	r := &m.res
	m.id = d.Uvarint()
	if d.Bool() {
		n := d.Count(8)
		r.Values = make([]uint64, n)
		for i := range r.Values {
			r.Values[i] = d.Fixed64()
		}
	}
	r.ExitCode = uint32(min(d.Uvarint(), 1<<32-1))
	r.Duration = time.Duration(d.Varint())
	m.err = decodeError(d)
	m.broken = d.Bool()
	m.instancesBuilt = d.Varint()
	m.workerRestarts = d.Varint()
	m.cpu = time.Duration(d.Varint())
	r.Stderr = d.ByteString()
	r.Output = d.ByteString()
	return d.Finish()
}

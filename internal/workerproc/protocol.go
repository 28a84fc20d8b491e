package workerproc

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// The worker-process protocol: frames (package wire) over the child's stdin
// (pool to child) and stdout (child to pool); the child's stderr is left for
// its diagnostics. The pool sends hello and waits for ready. Then, whenever
// the child is idle, the modules of the next batch it has not sent that
// child yet (each answered by loaded), then one batch of tasks, which the
// child runs in order, answering each with a result; cancel asks it to stop
// one task of the batch, running or not yet started. Closing the child's
// stdin asks it to exit. Tasks, results and errors are encoded with the
// codecs every wire shares (wire.EncodeTask, wire.ResultParts,
// wire.EncodeError).
const (
	protocolMagic = "wasmpool-worker"
	// protocolVersion changes with any change to a message below, or to the
	// shared codecs. hello and ready begin with the magic and the version in
	// every version, so two versions can always tell each other apart.
	protocolVersion = 3
)

const (
	frameHello  wire.Type = 1 // pool → child: helloMsg
	frameModule wire.Type = 2 // pool → child: moduleMsg
	frameTasks  wire.Type = 3 // pool → child: a batch of taskMsg
	frameCancel wire.Type = 4 // pool → child: cancelMsg

	frameReady  wire.Type = 101 // child → pool: readyMsg
	frameLoaded wire.Type = 102 // child → pool: loadedMsg
	frameResult wire.Type = 103 // child → pool: resultMsg
)

// PoolConfig is what the pool inside a worker process is configured with,
// beyond its engine: the parent's settings that apply to each instance.
// (The pool there has one worker; the parent applies its own TaskTimeout
// and TaskFuel to each task before sending it.)
type PoolConfig struct {
	Mode              uint8
	MaxTasksPerWorker int
	IdleTimeout       time.Duration
	Init              *engine.Task // its Module is sent along, if it has one
}

// Limits are the rlimits a child sets on itself: -1 means none.
type Limits struct {
	AddressSpace int64 // bytes the child may map beyond what it had mapped at startup
	CPUSeconds   int64 // CPU seconds over the child's life
}

// helloMsg configures a child: its engine, its one-worker pool and its limits.
type helloMsg struct {
	version    uint64
	engine     engine.Config // HostModules carries names only
	pool       PoolConfig
	initModule *moduleMsg // Init's own module, if it has one
	limits     Limits
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

// cancelMsg asks the child to stop a task of the batch, for a reason that
// becomes the cause of its ErrCancelled or ErrTimeout.
type cancelMsg struct {
	id     uint64
	reason cancelReason
}

type cancelReason byte

const (
	cancelCanceled cancelReason = iota + 1 // context.Canceled, Future.Cancel
	cancelDeadline                         // the task's context passed its deadline, or its Timeout
	cancelShutdown                         // Close or an expired Shutdown
)

type resultMsg struct {
	id  uint64
	res engine.Result
	err error
	// broken: err is the cause of the pool's Init failing, which breaks
	// the whole pool (or the task's module in it), not just this child.
	broken bool
	// The child's own counters, absolute: the pool adds what changed.
	instancesBuilt, workerRestarts int64
	cpu                            time.Duration // CPU time the child has used so far
}

func (m *helloMsg) encode(enc *wire.Encoder) {
	enc.String(protocolMagic)
	enc.Uvarint(protocolVersion)
	wire.EncodeConfig(enc, &m.engine)
	enc.Uvarint(uint64(m.pool.Mode))
	enc.Uvarint(uint64(max(m.pool.MaxTasksPerWorker, 0)))
	enc.Varint(int64(m.pool.IdleTimeout))
	enc.Bool(m.pool.Init != nil)
	if m.pool.Init != nil {
		wire.EncodeTask(enc, m.pool.Init)
	}
	enc.Bool(m.initModule != nil)
	if m.initModule != nil {
		m.initModule.encodeHead(enc)
		enc.ByteString(m.initModule.bytes())
	}
	enc.Varint(m.limits.AddressSpace)
	enc.Varint(m.limits.CPUSeconds)
}

// decodeVersion reads the magic and the version that begin hello and ready.
func decodeVersion(d *wire.Decoder) (uint64, error) {
	if magic := d.String(); magic != protocolMagic || d.Err() != nil {
		return 0, fmt.Errorf("not the wasmpool worker protocol (magic %q)", wire.Clip(magic))
	}
	return d.Uvarint(), d.Err()
}

func decodeHello(d *wire.Decoder, m *helloMsg) error {
	var err error
	if m.version, err = decodeVersion(d); err != nil || m.version != protocolVersion {
		return err
	}
	wire.DecodeConfig(d, &m.engine)
	m.pool.Mode = uint8(min(d.Uvarint(), 255))
	m.pool.MaxTasksPerWorker = int(min(d.Uvarint(), 1<<31-1))
	m.pool.IdleTimeout = time.Duration(d.Varint())
	if d.Bool() {
		m.pool.Init = &engine.Task{}
		wire.DecodeTask(d, m.pool.Init)
	}
	if d.Bool() {
		m.initModule = &moduleMsg{}
		m.initModule.decodeHead(d)
		m.initModule.wasm = d.ByteString()
	}
	m.limits.AddressSpace = d.Varint()
	m.limits.CPUSeconds = d.Varint()
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
	wire.EncodeError(enc, m.err)
}

func decodeLoaded(d *wire.Decoder, m *loadedMsg) error {
	m.id = d.Uvarint()
	m.err = wire.DecodeError(d, "")
	return d.Finish()
}

// batchParts encodes a batch of tasks as the parts of one frame: the count
// and each task's fields in enc, and each input as it lies (a large input
// is written to the pipe from where it is, never copied into the encoder).
func batchParts(enc *wire.Encoder, tasks []taskMsg) [][]byte {
	enc.Reset()
	enc.Uvarint(uint64(len(tasks)))
	// The heads go into enc one after the other; the parts slice them out
	// once enc has stopped growing.
	ends := make([]int, len(tasks))
	for i := range tasks {
		m := &tasks[i]
		enc.Uvarint(m.id)
		enc.Uvarint(m.moduleID)
		wire.EncodeTaskHead(enc, &m.task)
		ends[i] = len(enc.Bytes())
	}
	b := enc.Bytes()
	parts := make([][]byte, 0, 2*len(tasks))
	from := 0
	for i := range tasks {
		parts = append(parts, b[from:ends[i]], tasks[i].task.Input)
		from = ends[i]
	}
	return parts
}

// decodeBatch reads a batch of tasks. Inputs alias the payload.
func decodeBatch(d *wire.Decoder) ([]taskMsg, error) {
	n := d.Count(4)
	tasks := make([]taskMsg, n)
	for i := range tasks {
		m := &tasks[i]
		m.id = d.Uvarint()
		m.moduleID = d.Uvarint()
		wire.DecodeTask(d, &m.task)
	}
	return tasks, d.Finish()
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

// parts is the message as the parts of a frame: the fields encoded in enc,
// then the stderr and the output as they lie (they can be megabytes).
func (m *resultMsg) parts(enc *wire.Encoder, scratch *[binary.MaxVarintLen64]byte) [][]byte {
	enc.Uvarint(m.id)
	wire.EncodeError(enc, m.err)
	enc.Bool(m.broken)
	enc.Varint(m.instancesBuilt)
	enc.Varint(m.workerRestarts)
	enc.Varint(int64(m.cpu))
	return wire.ResultParts(enc, &m.res, scratch)
}

// decodeResult reads a result. Output, Stderr and Values alias the payload,
// which the caller owns.
func decodeResult(d *wire.Decoder, m *resultMsg) error {
	m.id = d.Uvarint()
	m.err = wire.DecodeError(d, "")
	m.broken = d.Bool()
	m.instancesBuilt = d.Varint()
	m.workerRestarts = d.Varint()
	m.cpu = time.Duration(d.Varint())
	wire.DecodeResult(d, &m.res)
	return d.Finish()
}

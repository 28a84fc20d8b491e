package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// The cluster's messages. Each NATS message is one frame of package wire,
// the framing of every wasmpool wire, and carries the task, its result and
// its error in the codecs every wire shares (wire.EncodeTask,
// wire.ResultParts, wire.EncodeError): a task crosses to a worker process
// and to a cluster worker the same way, and fails the same way. Raw bytes
// stay raw: the input, output and stderr end their messages as they are. A
// payload too large for one message goes to the payload object store
// instead, and the message names the object.
// Version 5 added the submitter's ID (fate-sharing) and the task's job
// record (named jobs).
const wireVersion = 5

const (
	frameTask   wire.Type = 1
	frameResult wire.Type = 2
)

// wireTask is a task as it travels to a worker.
type wireTask struct {
	V       uint64
	ID      string
	ReplyTo string // the submitter's result subject
	Started string // where to say a worker has it
	// Answer is the submitter's core subject for the result, which a live
	// submitter answers at once; a result it does not answer, or one of a
	// task with no Answer, goes through the result stream (ReplyTo).
	Answer string
	Module string // sha256 of the wasm, its name in the module store
	Name   string // the module's name on the submitter, for logs and errors
	// Deadline is the task's context deadline, in unix nanoseconds; 0: none.
	Deadline int64
	// MaxDeliveries is how many workers may take the task before it fails
	// with ErrWorkerLost; 1 is at-most-once.
	MaxDeliveries int
	// Lost counts the deliveries of this task that went silent before a
	// worker handed it back on purpose (a graceful restart) and sent it
	// again as a new message: they count against MaxDeliveries, the
	// hand-backs do not.
	Lost     int
	InputRef string // payload object holding the input
	// Submitter is the executor's ID, whose liveness record says whether
	// anyone still waits for an anonymous task (see liveness.go).
	Submitter string
	// Job is the key of the task's record in the job bucket, for a task of
	// a named job: its result is kept there, with the job's retention
	// (JobTTL, in nanoseconds), instead of going to its submitter.
	Job    string
	JobTTL int64
	Task   engine.Task
	// Route is the key of the task's requirement set, "" for a task of the
	// common queue: where a worker hands it back. It ends the frame, after
	// the input, and only when set, so that a task of the common queue
	// reads as it always did.
	Route string
}

// wireResult is a task's outcome as it travels back.
type wireResult struct {
	V          uint64
	ID         string
	Worker     string
	PayloadRef string // payload object holding output then stderr
	OutputLen  int    // of the payload object's bytes, the output's
	Err        error
	Res        engine.Result
}

var errBadFrame = errors.New("malformed wasmpool message")

func encodeTask(t *wireTask) ([]byte, error) {
	var enc wire.Encoder
	enc.Uvarint(wireVersion)
	enc.String(t.ID)
	enc.String(t.ReplyTo)
	enc.String(t.Started)
	enc.String(t.Answer)
	enc.String(t.Module)
	enc.String(t.Name)
	enc.Varint(t.Deadline)
	enc.Uvarint(uint64(max(t.MaxDeliveries, 0)))
	enc.Uvarint(uint64(max(t.Lost, 0)))
	enc.String(t.InputRef)
	enc.String(t.Submitter)
	enc.String(t.Job)
	enc.Varint(t.JobTTL)
	wire.EncodeTaskHead(&enc, &t.Task)
	if t.Route == "" {
		return wire.AppendFrame(nil, frameTask, enc.Bytes(), t.Task.Input)
	}
	var tail wire.Encoder
	tail.String(t.Route)
	return wire.AppendFrame(nil, frameTask, enc.Bytes(), t.Task.Input, tail.Bytes())
}

// decodeTask reads a task message. What it returns of a message it cannot
// read is what it could (its ID and reply subject, to report to).
func decodeTask(data []byte) (*wireTask, error) {
	typ, payload, err := wire.ParseFrame(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if typ != frameTask {
		return nil, fmt.Errorf("%w: a frame of type %d, not a task", errBadFrame, typ)
	}
	d := wire.NewDecoder(payload)
	t := &wireTask{V: d.Uvarint()}
	if t.V != wireVersion {
		return nil, fmt.Errorf("%w: a task of version %d (this worker speaks version %d)", errBadFrame, t.V, wireVersion)
	}
	t.ID, t.ReplyTo, t.Started, t.Answer, t.Module, t.Name = d.String(), d.String(), d.String(), d.String(), d.String(), d.String()
	t.Deadline = d.Varint()
	t.MaxDeliveries = int(min(d.Uvarint(), 1<<31-1))
	t.Lost = int(min(d.Uvarint(), 1<<31-1))
	t.InputRef = d.String()
	t.Submitter, t.Job = d.String(), d.String()
	t.JobTTL = d.Varint()
	wire.DecodeTask(d, &t.Task)
	if d.Remaining() > 0 {
		t.Route = d.String()
	}
	if err := d.Finish(); err != nil {
		return t, fmt.Errorf("%w: task %q: %w", errBadFrame, t.ID, err)
	}
	if t.ID == "" || t.ReplyTo == "" || t.Module == "" {
		return t, fmt.Errorf("%w: task %q names no reply subject or module", errBadFrame, t.ID)
	}
	return t, nil
}

func encodeResult(r *wireResult) ([]byte, error) {
	var enc wire.Encoder
	enc.Uvarint(wireVersion)
	enc.String(r.ID)
	enc.String(r.Worker)
	enc.String(r.PayloadRef)
	enc.Uvarint(uint64(max(r.OutputLen, 0)))
	wire.EncodeError(&enc, r.Err)
	var scratch [binary.MaxVarintLen64]byte
	return wire.AppendFrame(nil, frameResult, wire.ResultParts(&enc, &r.Res, &scratch)...)
}

// decodeResult reads a result message; its error names module as the
// submitter knows it.
func decodeResult(data []byte, module func(id string) string) (*wireResult, error) {
	typ, payload, err := wire.ParseFrame(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if typ != frameResult {
		return nil, fmt.Errorf("%w: a frame of type %d, not a result", errBadFrame, typ)
	}
	d := wire.NewDecoder(payload)
	r := &wireResult{V: d.Uvarint()}
	if r.V != wireVersion {
		return nil, fmt.Errorf("%w: a result of version %d", errBadFrame, r.V)
	}
	r.ID, r.Worker, r.PayloadRef = d.String(), d.String(), d.String()
	r.OutputLen = int(min(d.Uvarint(), 1<<31-1))
	r.Err = wire.DecodeError(d, module(r.ID))
	wire.DecodeResult(d, &r.Res)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("%w: result %q: %w", errBadFrame, r.ID, err)
	}
	if r.ID == "" {
		return nil, fmt.Errorf("%w: a result for no task", errBadFrame)
	}
	return r, nil
}

// split cuts the payload object of a large result into output and stderr.
func (r *wireResult) split(raw []byte) (out, stderr []byte, err error) {
	if r.OutputLen > len(raw) {
		return nil, nil, fmt.Errorf("%w: result %q: %d payload bytes, the output alone %d", errBadFrame, r.ID, len(raw), r.OutputLen)
	}
	return raw[:r.OutputLen:r.OutputLen], raw[r.OutputLen:], nil
}

package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// The wire format of tasks and results. A message is a frame: a 4-byte
// big-endian length, that many bytes of JSON metadata, then the raw bytes
// the metadata gives the lengths of (a task's input; a result's output then
// stderr). Raw bytes stay raw: no base64 for the payloads, which are most of
// the traffic. A payload too large for one message goes to the payload
// object store instead, and the metadata names the object.
const wireVersion = 1

// wireTask is a task as it travels to a worker.
type wireTask struct {
	V        int               `json:"v"`
	ID       string            `json:"id"`
	ReplyTo  string            `json:"reply_to"` // the submitter's result subject
	Started  string            `json:"started"`  // where to say a worker has it
	Module   string            `json:"module"`   // sha256 of the wasm, its name in the module store
	Name     string            `json:"name"`     // the module's name on the submitter, for logs
	Func     string            `json:"func,omitempty"`
	Params   []uint64          `json:"params,omitempty"`
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Mounts   []engine.Mount    `json:"mounts,omitempty"`
	Timeout  time.Duration     `json:"timeout,omitempty"`
	Deadline int64             `json:"deadline,omitempty"` // unix nanoseconds; 0: none
	// MaxDeliveries is how many workers may take the task before it fails
	// with ErrWorkerLost; 1 is at-most-once.
	MaxDeliveries int    `json:"max_deliveries"`
	InputLen      int    `json:"input_len"`
	InputRef      string `json:"input_ref,omitempty"` // payload object holding the input
}

// wireResult is a task's outcome as it travels back.
type wireResult struct {
	V          int           `json:"v"`
	ID         string        `json:"id"`
	Err        *wireError    `json:"err,omitempty"`
	Values     []uint64      `json:"values,omitempty"`
	ExitCode   uint32        `json:"exit_code,omitempty"`
	Duration   time.Duration `json:"duration"`
	Wait       time.Duration `json:"wait"`
	OutputLen  int           `json:"output_len"`
	StderrLen  int           `json:"stderr_len"`
	PayloadRef string        `json:"payload_ref,omitempty"` // payload object holding output then stderr
	Worker     string        `json:"worker,omitempty"`
}

func encodeFrame(meta any, blobs ...[]byte) ([]byte, error) {
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	n := 4 + len(m)
	for _, b := range blobs {
		n += len(b)
	}
	out := make([]byte, 4, n)
	binary.BigEndian.PutUint32(out, uint32(len(m)))
	out = append(out, m...)
	for _, b := range blobs {
		out = append(out, b...)
	}
	return out, nil
}

var errBadFrame = errors.New("malformed wasmpool message")

// decodeFrame reads the metadata into meta and returns the raw bytes after it.
func decodeFrame(data []byte, meta any) ([]byte, error) {
	if len(data) < 4 {
		return nil, errBadFrame
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return nil, errBadFrame
	}
	if err := json.Unmarshal(data[4:4+n], meta); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadFrame, err)
	}
	return data[4+n:], nil
}

func decodeTask(data []byte) (*wireTask, []byte, error) {
	var t wireTask
	rest, err := decodeFrame(data, &t)
	if err != nil {
		return nil, nil, err
	}
	if t.V != wireVersion || t.ID == "" || t.ReplyTo == "" || t.Module == "" {
		return &t, nil, fmt.Errorf("%w: version %d task %q (this worker speaks version %d)", errBadFrame, t.V, t.ID, wireVersion)
	}
	if t.InputRef == "" && len(rest) != t.InputLen {
		return &t, nil, fmt.Errorf("%w: task %q: %d bytes of input, want %d", errBadFrame, t.ID, len(rest), t.InputLen)
	}
	return &t, rest, nil
}

func decodeResult(data []byte) (*wireResult, []byte, error) {
	var r wireResult
	rest, err := decodeFrame(data, &r)
	if err != nil {
		return nil, nil, err
	}
	if r.V != wireVersion || r.ID == "" {
		return &r, nil, fmt.Errorf("%w: version %d result %q", errBadFrame, r.V, r.ID)
	}
	return &r, rest, nil
}

// split cuts a result's raw bytes into output and stderr.
func (r *wireResult) split(raw []byte) (out, stderr []byte, err error) {
	if r.OutputLen < 0 || r.StderrLen < 0 || len(raw) != r.OutputLen+r.StderrLen {
		return nil, nil, fmt.Errorf("%w: result %q: %d payload bytes, want %d", errBadFrame, r.ID, len(raw), r.OutputLen+r.StderrLen)
	}
	return raw[:r.OutputLen:r.OutputLen], raw[r.OutputLen:], nil
}

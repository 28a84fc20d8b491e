package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// The engine's values as every wire carries them: a task, its result, and
// an engine's configuration. What a wire cannot carry is listed where it is
// left out, and the tests that reflect over these types fail when a field
// is added that nothing here carries.

// EncodeTaskHead appends t but for its module, which each wire names its own
// way, and its streams (Stdin, Stdout, Stderr), which belong to this process
// (a wire refuses a task that sets them: see Streams). Input's bytes end the
// encoding and are not appended: the caller sends them as they lie, after
// the head (or calls EncodeTask).
func EncodeTaskHead(enc *Encoder, t *engine.Task) {
	enc.String(t.Func)
	// nil Params and empty Params differ: nil calls an SDK task, empty a
	// raw export that takes nothing.
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
	for _, m := range t.Mounts {
		enc.String(m.HostPath)
		enc.String(m.GuestPath)
		enc.Bool(m.ReadOnly)
	}
	enc.Varint(int64(t.Timeout))
	enc.Uvarint(t.Fuel)
	// Grants travel by name: the worker's own engine provides the
	// functions, and refuses a task granting one it lacks.
	encodeStrings(enc, t.Grants)
	keys = keys[:0]
	for k := range t.GrantArgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	enc.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		enc.String(k)
		// nil and empty args differ no more than a missing key does to
		// GrantArgs(ctx): both read as none.
		encodeStrings(enc, t.GrantArgs[k])
	}
	enc.Uvarint(uint64(len(t.Input)))
}

// EncodeTask is EncodeTaskHead followed by the input.
func EncodeTask(enc *Encoder, t *engine.Task) {
	EncodeTaskHead(enc, t)
	enc.Append(t.Input)
}

// DecodeTask reads a task into t (its module left nil). Input aliases the
// payload.
func DecodeTask(d *Decoder, t *engine.Task) {
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
	t.Fuel = d.Uvarint()
	t.Grants = decodeStrings(d)
	if n := d.Count(2); n > 0 {
		t.GrantArgs = make(map[string][]string, n)
		for range n {
			k := d.String()
			t.GrantArgs[k] = decodeStrings(d)
		}
	}
	t.Input = d.ByteString()
}

func encodeStrings(enc *Encoder, ss []string) {
	enc.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		enc.String(s)
	}
}

func decodeStrings(d *Decoder) []string {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.String()
	}
	return ss
}

// StreamsError is the error of a task that sets a stream (Stdin, Stdout,
// Stderr) for a command, or nil: a wire cannot carry a stream of this
// process to another, and refuses the task rather than drop the stream.
// (An export ignores the streams, in every executor.) to says where the
// task would have gone: "a worker process", "a cluster worker".
func StreamsError(t *engine.Task, to string) error {
	if t.Func != "" {
		return nil
	}
	var name string
	switch {
	case t.Stdin != nil:
		name = "Stdin"
	case t.Stdout != nil:
		name = "Stdout"
	case t.Stderr != nil:
		name = "Stderr"
	default:
		return nil
	}
	return &engine.Error{Module: t.Module.Name(), Err: fmt.Errorf("%w: the command's Task.%s is a stream of this process, "+
		"which %s cannot carry: pass the input as Task.Input, and read the output from the Result", errors.ErrUnsupported, name, to)}
}

// ResultParts appends r's fields to enc (after whatever the caller put
// there) and returns the whole as the parts of a frame: enc's bytes, then
// the stderr and the output as they lie, which can be megabytes.
func ResultParts(enc *Encoder, r *engine.Result, scratch *[binary.MaxVarintLen64]byte) [][]byte {
	enc.Bool(r.Values != nil)
	if r.Values != nil {
		enc.Uvarint(uint64(len(r.Values)))
		for _, v := range r.Values {
			enc.Fixed64(v)
		}
	}
	enc.Uvarint(uint64(r.ExitCode))
	enc.Varint(int64(r.Duration))
	enc.Varint(int64(r.Wait))
	enc.Uvarint(r.Fuel)
	enc.String(r.Worker)
	enc.Uvarint(uint64(len(r.Stderr)))
	outLen := binary.AppendUvarint(scratch[:0], uint64(len(r.Output)))
	return [][]byte{enc.Bytes(), r.Stderr, outLen, r.Output}
}

// EncodeResult appends r whole.
func EncodeResult(enc *Encoder, r *engine.Result) {
	var scratch [binary.MaxVarintLen64]byte
	parts := ResultParts(enc, r, &scratch)
	enc.Append(parts[1])
	enc.Append(parts[2])
	enc.Append(parts[3])
}

// DecodeResult reads a result into r. Output, Stderr and Values alias the
// payload, which the caller owns.
func DecodeResult(d *Decoder, r *engine.Result) {
	if d.Bool() {
		n := d.Count(8)
		r.Values = make([]uint64, n)
		for i := range r.Values {
			r.Values[i] = d.Fixed64()
		}
	}
	r.ExitCode = uint32(min(d.Uvarint(), 1<<32-1))
	r.Duration = time.Duration(d.Varint())
	r.Wait = time.Duration(d.Varint())
	r.Fuel = d.Uvarint()
	r.Worker = d.String()
	r.Stderr = d.ByteString()
	r.Output = d.ByteString()
}

// EncodeConfig appends an engine's configuration, for a worker process to
// build the same engine. Host modules and capabilities are Go functions:
// only their names cross, and the worker process grants its own under those
// names.
func EncodeConfig(enc *Encoder, c *engine.Config) {
	enc.Uvarint(c.MemoryLimitBytes)
	enc.Varint(int64(c.OutputLimitBytes))
	enc.String(c.CacheDir)
	enc.Bool(c.Interpreter)
	enc.Bool(c.NoInterrupt)
	enc.Uvarint(uint64(len(c.HostModules)))
	for _, h := range c.HostModules {
		enc.String(h.Name)
	}
	enc.Uvarint(uint64(len(c.Capabilities)))
	for _, cp := range c.Capabilities {
		enc.String(cp.Name)
	}
	enc.Bool(c.Preinitialize)
	enc.Bool(c.Deterministic != nil)
	if d := c.Deterministic; d != nil {
		enc.Varint(d.WalltimeUnixNano)
		enc.Varint(d.Seed)
	}
	enc.Varint(int64(c.MaxModules))
	enc.Varint(c.MaxModuleBytes)
}

// DecodeConfig reads what EncodeConfig wrote.
func DecodeConfig(d *Decoder, c *engine.Config) {
	c.MemoryLimitBytes = d.Uvarint()
	c.OutputLimitBytes = int(clampInt(d.Varint()))
	c.CacheDir = d.String()
	c.Interpreter = d.Bool()
	c.NoInterrupt = d.Bool()
	if n := d.Count(1); n > 0 {
		c.HostModules = make([]engine.HostModule, n)
		for i := range c.HostModules {
			c.HostModules[i].Name = d.String()
		}
	}
	if n := d.Count(1); n > 0 {
		c.Capabilities = make([]engine.Capability, n)
		for i := range c.Capabilities {
			c.Capabilities[i].Name = d.String()
		}
	}
	c.Preinitialize = d.Bool()
	if d.Bool() {
		c.Deterministic = &engine.Determinism{WalltimeUnixNano: d.Varint(), Seed: d.Varint()}
	}
	c.MaxModules = int(clampInt(d.Varint()))
	c.MaxModuleBytes = d.Varint()
}

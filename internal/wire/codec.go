package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encoder builds a payload. The zero value is ready to use; Reset reuses its
// buffer for the next payload.
type Encoder struct {
	b []byte
}

// Reset empties the encoder, keeping its buffer.
func (e *Encoder) Reset() { e.b = e.b[:0] }

// Bytes is the payload built so far. It is valid until the next call that
// changes the encoder.
func (e *Encoder) Bytes() []byte { return e.b }

// Byte appends one byte.
func (e *Encoder) Byte(v byte) { e.b = append(e.b, v) }

// Bool appends a bool as one byte, 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Uvarint appends an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Varint appends a signed (zig-zag) varint.
func (e *Encoder) Varint(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Fixed64 appends 8 bytes, little-endian: for values that are seldom small
// (raw wasm arguments, bit patterns of floats).
func (e *Encoder) Fixed64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// Append appends raw bytes: the body of a byte string whose length was
// encoded already (to send a large body as a separate part of a frame, say).
func (e *Encoder) Append(b []byte) { e.b = append(e.b, b...) }

// ByteString appends a length-prefixed byte string.
func (e *Encoder) ByteString(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.b = append(e.b, b...)
}

// Decoder reads a payload field by field. The first error sticks: every
// later read returns a zero value, so a caller reads all its fields and
// checks Err (or Finish) once.
type Decoder struct {
	b   []byte
	off int
	err error
}

// NewDecoder returns a Decoder on payload.
func NewDecoder(payload []byte) *Decoder { return &Decoder{b: payload} }

// Err is the first error met, if any; it matches ErrMalformed.
func (d *Decoder) Err() error { return d.err }

// Finish is Err, or an error if bytes are left over: a payload must be read
// exactly, or it was not what the reader thought.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes left over after the last field", len(d.b)-d.off)
	}
	return d.err
}

// Remaining is how many bytes are left to read.
func (d *Decoder) Remaining() int { return len(d.b) - d.off }

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	d.off = len(d.b)
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("a byte past the end of the payload")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

// Bool reads a bool; any byte but 0 or 1 is malformed.
func (d *Decoder) Bool() bool {
	switch v := d.Byte(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("a bool of value %d", v)
		return false
	}
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("a bad varint")
		return 0
	}
	d.off += n
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("a bad varint")
		return 0
	}
	d.off += n
	return v
}

// Fixed64 reads 8 bytes, little-endian.
func (d *Decoder) Fixed64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail("a 64-bit value past the end of the payload")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// ByteString reads a length-prefixed byte string. The result aliases the
// payload (nil when empty): copy it to keep it past the payload's life.
func (d *Decoder) ByteString() []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("a string of %d bytes with %d left", n, len(d.b)-d.off)
		return nil
	}
	if n == 0 {
		return nil
	}
	v := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return v
}

// String reads a length-prefixed string.
func (d *Decoder) String() string { return string(d.ByteString()) }

// Count reads the length of a list whose items take at least minItemSize
// bytes each, refusing one that the rest of the payload cannot hold: a
// corrupt count never turns into a huge allocation.
func (d *Decoder) Count(minItemSize int) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	limit := uint64(len(d.b) - d.off)
	if minItemSize > 1 {
		limit /= uint64(minItemSize)
	}
	if n > limit || n > math.MaxInt32 {
		d.fail("a list of %d items with %d bytes left", n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

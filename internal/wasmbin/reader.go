package wasmbin

import (
	"fmt"
	"unicode/utf8"
)

// reader is a bounds-checked cursor over part of a wasm binary. It never
// panics on truncated or hostile input, and its counts are checked against
// the bytes left before anything is sized from them.
type reader struct {
	b   []byte
	off int // offset of b[0] in the whole binary, for messages
}

// ShortError is a module that ends before what it declares: a truncated
// binary, or a count or length over the bytes left. These are what wazero
// would size a buffer from before noticing, which is why Check refuses them
// before wazero sees the bytes.
type ShortError struct{ msg string }

func (e *ShortError) Error() string { return e.msg }

var errTruncated error = &ShortError{"truncated WebAssembly binary"}

func (r *reader) done() bool { return len(r.b) == 0 }

func (r *reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errTruncated
	}
	c := r.b[0]
	r.advance(1)
	return c, nil
}

func (r *reader) advance(n int) {
	r.b = r.b[n:]
	r.off += n
}

func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, errTruncated
	}
	out := r.b[:n]
	r.advance(int(n))
	return out, nil
}

// sub returns a reader over the next n bytes and skips them.
func (r *reader) sub(n uint64) (reader, error) {
	off := r.off
	b, err := r.bytes(n)
	return reader{b: b, off: off}, err
}

// uleb reads an unsigned LEB128 number of at most bits bits, as wazero
// does: at most ceil(bits/7) bytes.
func (r *reader) uleb(bits uint) (uint64, error) {
	var v uint64
	for i, shift := 0, uint(0); i < len(r.b); i, shift = i+1, shift+7 {
		if shift >= bits {
			break
		}
		c := r.b[i]
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				return 0, fmt.Errorf("integer too large at offset %d", r.off)
			}
			r.advance(i + 1)
			return v, nil
		}
	}
	return 0, errTruncated
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// skipSLEB skips a signed LEB128 number of at most bits bits.
func (r *reader) skipSLEB(bits uint) error {
	max := int((bits + 6) / 7)
	for i := 0; i < len(r.b) && i < max; i++ {
		if r.b[i]&0x80 == 0 {
			r.advance(i + 1)
			return nil
		}
	}
	return errTruncated
}

// s32 reads a signed LEB128 32-bit integer (an i32.const immediate).
func (r *reader) s32() (int32, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, errTruncated
			}
			return int32(v), nil
		}
	}
	return 0, errTruncated
}

// s33 reads a block type's type index (a signed 33-bit LEB128).
func (r *reader) s33() (int64, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, errTruncated
}

// count reads a vector's length and checks that the bytes left can hold
// that many entries of at least minSize bytes each. wazero allocates a
// vector's entries before reading them, so an unchecked count is an
// allocation of the attacker's choosing.
func (r *reader) count(what string, minSize int) (uint32, error) {
	at := r.off
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)) {
		return 0, &ShortError{fmt.Sprintf("%s declares %d entries at offset %d, but only %d bytes follow", what, n, at, len(r.b))}
	}
	return n, nil
}

// name reads a length-prefixed UTF-8 string.
func (r *reader) name(what string) (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(uint64(n))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not valid UTF-8", what)
	}
	return string(b), nil
}

package engine

import (
	"encoding/binary"
	"errors"
)

// declaredMemoryMinPages reads the minimum size, in pages, of the module's
// memory (defined or imported) straight from its binary. wazero would panic at
// instantiation if the memory allocator refused the minimum, so a module whose
// minimum is over the limit must be refused at compile time; and wazero only
// reports memories that are exported or imported, so we read the sections.
// It returns 0 for a module without memory.
func declaredMemoryMinPages(wasm []byte) (uint64, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return 0, errors.New("not a WebAssembly binary (bad magic number)")
	}
	r := reader{b: wasm[8:]}
	var most uint64
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return 0, err
		}
		size, err := r.u32()
		if err != nil {
			return 0, err
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return 0, err
		}
		var min uint64
		switch id {
		case 2: // import section: memory imports carry limits too
			min, err = importedMemoryMin(reader{b: body})
		case 5: // memory section
			min, err = definedMemoryMin(reader{b: body})
		default:
			continue
		}
		if err != nil {
			return 0, err
		}
		most = max(most, min)
	}
	return most, nil
}

func definedMemoryMin(r reader) (uint64, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var most uint64
	for range n {
		min, err := r.limits()
		if err != nil {
			return 0, err
		}
		most = max(most, min)
	}
	return most, nil
}

func importedMemoryMin(r reader) (uint64, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var most uint64
	for range n {
		for range 2 { // module name, field name
			l, err := r.u32()
			if err != nil {
				return 0, err
			}
			if _, err := r.bytes(int(l)); err != nil {
				return 0, err
			}
		}
		kind, err := r.byte()
		if err != nil {
			return 0, err
		}
		switch kind {
		case 0: // func: type index
			_, err = r.u32()
		case 1: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				_, err = r.limits()
			}
		case 2: // memory
			var min uint64
			min, err = r.limits()
			most = max(most, min)
		case 3: // global: valtype, mutability
			_, err = r.bytes(2)
		case 4: // tag: attribute, type index
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			return 0, errors.New("malformed import section")
		}
		if err != nil {
			return 0, err
		}
	}
	return most, nil
}

// reader is a bounds-checked cursor over a wasm binary; it never panics on
// truncated or hostile input.
type reader struct{ b []byte }

var errTruncated = errors.New("truncated WebAssembly binary")

func (r *reader) done() bool { return len(r.b) == 0 }

func (r *reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errTruncated
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, errTruncated
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out, nil
}

func (r *reader) u32() (uint32, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<32-1 {
		return 0, errTruncated
	}
	r.b = r.b[n:]
	return uint32(v), nil
}

func (r *reader) u64() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, errTruncated
	}
	r.b = r.b[n:]
	return v, nil
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

// limits reads a limits structure and returns its minimum. The flag's bit 0
// says a maximum follows; bit 2 (memory64) makes both 64-bit.
func (r *reader) limits() (uint64, error) {
	flag, err := r.byte()
	if err != nil {
		return 0, err
	}
	min, err := r.u64()
	if err != nil {
		return 0, err
	}
	if flag&1 != 0 {
		if _, err := r.u64(); err != nil {
			return 0, err
		}
	}
	return min, nil
}

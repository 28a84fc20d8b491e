package testmod

import "encoding/binary"

// Const returns a module of its own for every n, the smallest there is to
// compile: an export "run" of type () -> i32 that returns n. Tests of what a
// process keeps of many distinct modules make thousands of them.
func Const(n uint32) []byte {
	body := append([]byte{0x00, 0x41}, sleb(int64(int32(n)))...) // no locals; i32.const n
	body = append(body, 0x0b)                                    // end
	sec := func(id byte, payload []byte) []byte {
		return append(append([]byte{id}, binary.AppendUvarint(nil, uint64(len(payload)))...), payload...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, []byte{1, 0x60, 0, 1, 0x7f})...)                                                          // type: () -> i32
	m = append(m, sec(3, []byte{1, 0})...)                                                                         // function 0 has type 0
	m = append(m, sec(7, []byte{1, 3, 'r', 'u', 'n', 0, 0})...)                                                    // export "run" = func 0
	m = append(m, sec(10, append(append([]byte{1}, binary.AppendUvarint(nil, uint64(len(body)))...), body...))...) // code
	return m
}

// sleb is v in signed LEB128, as i32.const takes it.
func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

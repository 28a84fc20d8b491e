package engine_test

// A few helpers to write WebAssembly binaries byte by byte, for modules no
// toolchain would emit: the hostile declarations of modcheck_test.go.

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func section(id byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{id}, uleb(uint64(len(b))), b)
}

func wasmName(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

// wasmModule is the header followed by the sections.
func wasmModule(sections ...[]byte) []byte {
	return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(sections...))
}

// oneFunc is a module with one function of type () -> i32, exported as
// "run", whose body (after the locals) is code.
func oneFunc(locals, code []byte) []byte {
	body := cat(locals, code, []byte{0x0b})
	return wasmModule(
		section(1, []byte{1, 0x60, 0, 1, 0x7f}),
		section(3, []byte{1, 0}),
		section(7, []byte{1}, wasmName("run"), []byte{0, 0}),
		section(10, []byte{1}, uleb(uint64(len(body))), body),
	)
}

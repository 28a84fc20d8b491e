package wasmbin

// Helpers to write WebAssembly binaries byte by byte, for modules no
// toolchain would emit.

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

func sectionBytes(id byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{id}, uleb(uint64(len(b))), b)
}

func wasmName(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

// wasmModule is the header followed by the sections.
func wasmModule(secs ...[]byte) []byte {
	return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(secs...))
}

//go:build wasip1

package guest

import (
	"errors"
	"unsafe"
)

//go:wasmimport wasmpool input_size
func inputSize() int32

//go:wasmimport wasmpool input_read
func inputRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmpool output_write
func outputWrite(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmpool error_write
func errorWrite(ptr unsafe.Pointer, n uint32)

// ErrOutputLimit is returned by Write once the task's output has gone past
// the host's output limit. The host has already decided the task failed;
// the guest should stop producing output and return.
var ErrOutputLimit = errors.New("guest: output limit exceeded")

// Input returns the whole input of the current task in a freshly allocated
// slice. Reading is stateless on the host side, so Input may be called more
// than once; each call copies the input again.
func Input() []byte {
	n := inputSize()
	if n <= 0 {
		return []byte{}
	}
	buf := make([]byte, n)
	got := inputRead(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
	if got < 0 {
		got = 0
	}
	return buf[:min(int(got), len(buf))]
}

// Write appends p to the task's output. It returns ErrOutputLimit when the
// host refuses the bytes because the output limit has been passed.
func Write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if outputWrite(unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p))) < 0 {
		return ErrOutputLimit
	}
	return nil
}

// Fail appends msg to the task's failure message and returns 1, so that an
// export can end with `return guest.Fail("why")`.
func Fail(msg string) int32 {
	if len(msg) > 0 {
		errorWrite(unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
	}
	return 1
}

// Serve runs fn on the task's input and reports its result to the host: the
// output is written and 0 returned on success; the error's text becomes the
// failure message and 1 is returned on failure (also when the output is
// refused for being over the limit). Panics in fn are not recovered: they
// crash the instance (see the package documentation).
func Serve(fn func(in []byte) ([]byte, error)) int32 {
	out, err := fn(Input())
	if err != nil {
		return Fail(err.Error())
	}
	if err := Write(out); err != nil {
		return 1
	}
	return 0
}

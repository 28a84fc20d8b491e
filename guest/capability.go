//go:build wasip1

package guest

import (
	"errors"
	"unsafe"
)

//go:wasmimport wasmpool capability_call
func capabilityCall(namePtr unsafe.Pointer, nameLen uint32, fnPtr unsafe.Pointer, fnLen uint32, inPtr unsafe.Pointer, inLen uint32) int32

//go:wasmimport wasmpool capability_result_size
func capabilityResultSize() int32

//go:wasmimport wasmpool capability_result_read
func capabilityResultRead(ptr unsafe.Pointer, n uint32) int32

// The status capability_call returns (see engine/capability.go).
const (
	statusOK         = 0
	statusError      = 1
	statusNotGranted = 2
	statusNoFunc     = 3
)

var (
	// ErrNotGranted is matched (errors.Is) by the error of a Call to a
	// capability the task is not granted, or the host does not provide.
	ErrNotGranted = errors.New("capability not granted")
	// ErrNoFunc is matched by the error of a Call to a function the
	// capability does not have.
	ErrNoFunc = errors.New("no such capability function")
)

// CallError is the error of a Call that did not succeed: the host's message
// (a host function's error text, or why the call was refused). It matches
// ErrNotGranted or ErrNoFunc when the call was refused for that reason.
type CallError struct {
	Capability, Func string
	Message          string
	kind             error
}

func (e *CallError) Error() string { return e.Message }
func (e *CallError) Unwrap() error { return e.kind }

// Call calls function fn of the host capability with in, and returns its
// output or its error. The host copies in before the call; the result is a
// fresh slice.
func Call(capability, fn string, in []byte) ([]byte, error) {
	status := capabilityCall(
		unsafe.Pointer(unsafe.StringData(capability)), uint32(len(capability)),
		unsafe.Pointer(unsafe.StringData(fn)), uint32(len(fn)),
		unsafe.Pointer(unsafe.SliceData(in)), uint32(len(in)))
	res := capabilityResult()
	switch status {
	case statusOK:
		return res, nil
	case statusNotGranted:
		return nil, &CallError{Capability: capability, Func: fn, Message: string(res), kind: ErrNotGranted}
	case statusNoFunc:
		return nil, &CallError{Capability: capability, Func: fn, Message: string(res), kind: ErrNoFunc}
	default:
		return nil, &CallError{Capability: capability, Func: fn, Message: string(res)}
	}
}

func capabilityResult() []byte {
	n := capabilityResultSize()
	if n <= 0 {
		return []byte{}
	}
	buf := make([]byte, n)
	got := capabilityResultRead(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
	return buf[:min(max(int(got), 0), len(buf))]
}

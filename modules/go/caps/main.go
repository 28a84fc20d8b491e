//go:build wasip1

// Command caps is a wasmpool guest module that calls host capabilities, for
// the tests of typed host functions, grants and the HTTP capability. It is
// also the Go half of the guest SDKs' shared example: modules/c/caps.c,
// modules/rust/caps.rs and modules/assemblyscript/caps.ts have its SDK
// exports (all but badpointer and badresult), and guest/sdk_test.go expects
// the same outputs from all four.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

// split reads an input "capability\nfunction\npayload".
func split(in []byte) (capability, fn string, payload []byte) {
	parts := bytes.SplitN(in, []byte("\n"), 3)
	for len(parts) < 3 {
		parts = append(parts, nil)
	}
	return string(parts[0]), string(parts[1]), parts[2]
}

// call calls what its input names and outputs the result; the call's error
// fails the task.
//
//go:wasmexport call
func call() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		return guest.Call(split(in))
	})
}

// handled calls what its input names and reports the outcome as its output,
// an error included: the task succeeds either way.
//
//go:wasmexport handled
func handled() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		out, err := guest.Call(split(in))
		if err != nil {
			return fmt.Appendf(nil, "error: %v (not granted: %t, no func: %t)",
				err, errors.Is(err, guest.ErrNotGranted), errors.Is(err, guest.ErrNoFunc)), nil
		}
		return append([]byte("ok: "), out...), nil
	})
}

// twice calls what its input names two times and outputs both results,
// for a task whose grants must hold across calls.
//
//go:wasmexport twice
func twice() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		c, fn, p := split(in)
		a, err := guest.Call(c, fn, p)
		if err != nil {
			return nil, err
		}
		b, err := guest.Call(c, fn, p)
		if err != nil {
			return nil, err
		}
		return append(append(a, '|'), b...), nil
	})
}

// pure calls no capability at all.
//
//go:wasmexport pure
func pure() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) { return bytes.ToUpper(in), nil })
}

//go:wasmimport wasmpool capability_call
func rawCall(namePtr unsafe.Pointer, nameLen uint32, fnPtr unsafe.Pointer, fnLen uint32, inPtr uint32, inLen uint32) int32

// badpointer hands the host an input pointer far past the end of memory.
//
//go:wasmexport badpointer
func badpointer() int32 {
	name, fn := "kv", "get"
	return rawCall(unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)),
		unsafe.Pointer(unsafe.StringData(fn)), uint32(len(fn)),
		0xfff00000, 16)
}

// fetch gets the URL its input names and outputs "STATUS BODY".
//
//go:wasmexport fetch
func fetch() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		resp, err := guest.HTTP.Get(string(in))
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%d %s", resp.Status, resp.Body), nil
	})
}

// post sends its input as the body of a POST to the URL in the input's
// first line, with header X-Test: yes, and outputs "STATUS X-Reply BODY".
//
//go:wasmexport post
func post() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		url, body, _ := bytes.Cut(in, []byte("\n"))
		resp, err := guest.HTTP.Do(&guest.HTTPRequest{Method: "POST", URL: string(url), Body: body,
			Header: map[string][]string{"X-Test": {"yes"}}})
		if err != nil {
			return nil, err
		}
		var reply string
		if v := resp.Header["X-Reply"]; len(v) > 0 {
			reply = v[0]
		}
		return fmt.Appendf(nil, "%d %s %s", resp.Status, reply, resp.Body), nil
	})
}

//go:wasmimport wasmpool capability_result_read
func rawResultRead(ptr uint32, n uint32) int32

// badresult calls kv.get, then asks for its result at an address far past
// the end of memory.
//
//go:wasmexport badresult
func badresult() int32 {
	if _, err := guest.Call("kv", "get", []byte("a")); err != nil {
		return guest.Fail(err.Error())
	}
	return rawResultRead(0xfff00000, 5)
}

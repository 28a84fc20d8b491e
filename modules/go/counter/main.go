//go:build wasip1

// Command counter is a wasmpool guest module with package-level state, to
// show (and test) what survives between tasks on one instance: "count"
// outputs how many times it has been called on this instance, "secret_set"
// stores its input and "secret_get" outputs what was stored.
package main

import (
	"strconv"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

var (
	calls  int
	secret []byte
)

//go:wasmexport count
func count() int32 {
	return guest.Serve(func([]byte) ([]byte, error) {
		calls++
		return strconv.AppendInt(nil, int64(calls), 10), nil
	})
}

//go:wasmexport secret_set
func secretSet() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		secret = in
		return nil, nil
	})
}

//go:wasmexport secret_get
func secretGet() int32 {
	return guest.Serve(func([]byte) ([]byte, error) { return secret, nil })
}

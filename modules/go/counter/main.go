//go:build wasip1

// Command counter is a wasmpool guest module with package-level state, to
// show (and test) what survives between tasks on one instance: "count"
// outputs how many times it has been called on this instance, "secret_set"
// stores its input and "secret_get" outputs what was stored. "rand" outputs
// a number from math/rand's global source, which the Go runtime seeds when
// the instance initialises, and "getenv" the variable its input names.
package main

import (
	"math/rand"
	"os"
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

//go:wasmexport rand
func randTask() int32 {
	return guest.Serve(func([]byte) ([]byte, error) {
		return strconv.AppendUint(nil, rand.Uint64(), 10), nil
	})
}

//go:wasmexport getenv
func getenv() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) { return []byte(os.Getenv(string(in))), nil })
}

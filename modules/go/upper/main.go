//go:build wasip1

// Command upper is a wasmpool guest module whose "upper" task upper-cases its
// input.
package main

import (
	"bytes"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

//go:wasmexport upper
func upper() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) { return bytes.ToUpper(in), nil })
}

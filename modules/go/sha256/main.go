//go:build wasip1

// Command sha256 is a wasmpool guest module whose "sha256" task outputs the
// lowercase hex SHA-256 of its input.
package main

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

//go:wasmexport sha256
func sum() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		s := sha256.Sum256(in)
		return []byte(hex.EncodeToString(s[:])), nil
	})
}

//go:build wasip1

// Command wordcount is a wasmpool guest module whose "wordcount" task counts
// the bytes, lines and words of its input, like wc, and outputs them as JSON.
package main

import (
	"bytes"
	"encoding/json"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

type counts struct {
	Bytes int `json:"bytes"`
	Lines int `json:"lines"`
	Words int `json:"words"`
}

//go:wasmexport wordcount
func wordcount() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		return json.Marshal(counts{
			Bytes: len(in),
			Lines: bytes.Count(in, []byte{'\n'}),
			Words: len(bytes.Fields(in)),
		})
	})
}

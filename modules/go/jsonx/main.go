//go:build wasip1

// Command jsonx is a wasmpool guest module whose "jsonx" task parses a JSON
// object, upper-cases every string value in it (at any depth) and adds a field
// "n_keys" with the number of top-level keys. Keys are left as they are.
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

func upper(v any) any {
	switch v := v.(type) {
	case string:
		return strings.ToUpper(v)
	case []any:
		for i := range v {
			v[i] = upper(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = upper(v[k])
		}
	}
	return v
}

//go:wasmexport jsonx
func jsonx() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		var obj map[string]any
		if err := json.Unmarshal(in, &obj); err != nil {
			return nil, fmt.Errorf("jsonx wants a JSON object: %v", err)
		}
		if obj == nil {
			return nil, fmt.Errorf("jsonx wants a JSON object, got null")
		}
		n := len(obj)
		upper(obj)
		obj["n_keys"] = n
		return json.Marshal(obj)
	})
}

package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
)

// parseParams reads --params "1,2" as the raw wasm arguments of x: integers
// (negative ones too, and 0x hex) for i32/i64, decimals for f32/f64.
func parseParams(s string, x engine.Export) ([]uint64, error) {
	var fields []string
	if strings.TrimSpace(s) != "" {
		fields = strings.Split(s, ",")
	}
	if len(fields) != len(x.Params) {
		return nil, fmt.Errorf("%s %s takes %d value(s), got %d", x.Name, x.Signature(), len(x.Params), len(fields))
	}
	out := make([]uint64, len(fields))
	for i, field := range fields {
		v, err := parseValue(strings.TrimSpace(field), x.Params[i])
		if err != nil {
			return nil, fmt.Errorf("value %d (%s): %v", i+1, api.ValueTypeName(x.Params[i]), err)
		}
		out[i] = v
	}
	return out, nil
}

func parseValue(s string, t api.ValueType) (uint64, error) {
	switch t {
	case api.ValueTypeI32:
		if n, err := strconv.ParseInt(s, 0, 32); err == nil {
			return api.EncodeI32(int32(n)), nil
		}
		n, err := strconv.ParseUint(s, 0, 32) // 0xffffffff and friends
		if err != nil {
			return 0, fmt.Errorf("%q is not a 32-bit integer", s)
		}
		return api.EncodeU32(uint32(n)), nil
	case api.ValueTypeI64:
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return api.EncodeI64(n), nil
		}
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a 64-bit integer", s)
		}
		return n, nil
	case api.ValueTypeF32:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return api.EncodeF32(float32(f)), nil
	case api.ValueTypeF64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return api.EncodeF64(f), nil
	}
	return 0, fmt.Errorf("cannot pass a %s from the command line", api.ValueTypeName(t))
}

// formatValues prints raw results space-separated, each as its type reads:
// i32/i64 signed, floats in the shortest form that round-trips.
func formatValues(vals []uint64, types []api.ValueType) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		t := api.ValueTypeI64
		if i < len(types) {
			t = types[i]
		}
		switch t {
		case api.ValueTypeI32:
			parts[i] = strconv.FormatInt(int64(api.DecodeI32(v)), 10)
		case api.ValueTypeI64:
			parts[i] = strconv.FormatInt(int64(v), 10)
		case api.ValueTypeF32:
			parts[i] = strconv.FormatFloat(float64(api.DecodeF32(v)), 'g', -1, 32)
		case api.ValueTypeF64:
			parts[i] = strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64)
		default:
			parts[i] = "0x" + strconv.FormatUint(v, 16)
		}
	}
	return strings.Join(parts, " ")
}

//go:build wasip1

// Command sdkexample is the guest SDKs' shared example: the same four
// exports, with the same outputs, are written against the C, Rust and
// AssemblyScript SDKs (modules/c/sdkexample.c, modules/rust/sdkexample.rs,
// modules/assemblyscript/sdkexample.ts), and one test runs all four.
//
//	lookup  input KEY: calls capability "kv" function "get" with KEY and
//	        outputs "KEY=VALUE"; the host function's error is handled as a
//	        value ("KEY: no value (MESSAGE)"); a refused call (not granted,
//	        no such function) fails the task with the host's message.
//	probe   input "CAPABILITY\nFUNC\nPAYLOAD": calls it and reports the
//	        outcome, whatever it is, as "ok: OUT", "not granted: MESSAGE",
//	        "no func: MESSAGE" or "error: MESSAGE".
//	fetch   input URL: HTTP GET, outputs "STATUS X-GREETING BODY" (the
//	        response's X-Greeting header, "-" if it has none); a refused
//	        request fails the task with its message.
//	post    input "URL\nBODY": HTTP POST of BODY with header X-Test: yes,
//	        outputs "STATUS X-REPLY BODY" likewise.
package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

//go:wasmexport lookup
func lookup() int32 {
	return guest.Serve(func(key []byte) ([]byte, error) {
		v, err := guest.Call("kv", "get", key)
		if errors.Is(err, guest.ErrNotGranted) || errors.Is(err, guest.ErrNoFunc) {
			return nil, err
		}
		if err != nil {
			return fmt.Appendf(nil, "%s: no value (%v)", key, err), nil
		}
		return fmt.Appendf(nil, "%s=%s", key, v), nil
	})
}

//go:wasmexport probe
func probe() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		parts := bytes.SplitN(in, []byte("\n"), 3)
		for len(parts) < 3 {
			parts = append(parts, nil)
		}
		out, err := guest.Call(string(parts[0]), string(parts[1]), parts[2])
		switch {
		case errors.Is(err, guest.ErrNotGranted):
			return fmt.Appendf(nil, "not granted: %v", err), nil
		case errors.Is(err, guest.ErrNoFunc):
			return fmt.Appendf(nil, "no func: %v", err), nil
		case err != nil:
			return fmt.Appendf(nil, "error: %v", err), nil
		}
		return append([]byte("ok: "), out...), nil
	})
}

// firstHeader is the response header's first value, "-" if it has none
// (the host's names are canonical, as net/http writes them).
func firstHeader(resp *guest.HTTPResponse, name string) string {
	if v := resp.Header[name]; len(v) > 0 {
		return v[0]
	}
	return "-"
}

//go:wasmexport fetch
func fetch() int32 {
	return guest.Serve(func(url []byte) ([]byte, error) {
		resp, err := guest.HTTP.Get(string(url))
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%d %s %s", resp.Status, firstHeader(resp, "X-Greeting"), resp.Body), nil
	})
}

//go:wasmexport post
func post() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		url, body, _ := bytes.Cut(in, []byte("\n"))
		resp, err := guest.HTTP.Do(&guest.HTTPRequest{Method: "POST", URL: string(url), Body: body,
			Header: map[string][]string{"X-Test": {"yes"}}})
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%d %s %s", resp.Status, firstHeader(resp, "X-Reply"), resp.Body), nil
	})
}

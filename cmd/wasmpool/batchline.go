package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
)

// taskLine is one line of a batch file, as DESIGN.md specifies it:
//
//	{"module": "path.wasm", "func": "name", "args": ["a"], "env": {"K": "V"},
//	 "mounts": ["hostdir:/guest", "hostdir2:/ro:ro"], "input": "text",
//	 "input_base64": "...", "timeout": "2s", "fuel": 1000000,
//	 "require": {"gpu": "a100"}, "key": "k1"}
//
// Only "module" is required.
type taskLine struct {
	Module      string            `json:"module"`
	Func        string            `json:"func"`
	Args        []string          `json:"args"`
	Env         map[string]string `json:"env"`
	Mounts      []string          `json:"mounts"`
	Input       *string           `json:"input"`
	InputBase64 *string           `json:"input_base64"`
	Timeout     string            `json:"timeout"`
	// Fuel is a budget of WebAssembly instructions (0: none), read as it
	// is written so that a bad one gets a message of ours.
	Fuel json.RawMessage `json:"fuel"`
	// AllowHosts are the hosts the guest may reach over HTTP, in place of
	// --allow-host's ([] for none).
	AllowHosts []string `json:"allow_hosts"`
	// Key names the task in its cluster job (--job), in place of its
	// position: a batch whose lines move keeps its finished ones.
	Key string `json:"key"`
	// Require are labels the worker that runs the line must have, with
	// --nats (over --require's).
	Require map[string]string `json:"require"`
}

// task is a batch line made ready to run (the module still a path).
type task struct {
	line    int
	module  string // path, resolved against the batch file's directory
	fn      string
	args    []string
	env     map[string]string
	mounts  []engine.Mount // host paths resolved, not yet checked
	input   []byte
	timeout time.Duration
	fuel    uint64
	// allowHosts: nil when the line does not say, so --allow-host's apply.
	allowHosts []string
	key        string            // "" for its position
	require    map[string]string // nil when the line requires nothing
}

// parseTaskLine reads line lineNo of a batch file. It touches no file: paths
// are only resolved against baseDir ("" = the current directory). Every
// error is a *badLineError naming the line.
func parseTaskLine(lineNo int, data []byte, baseDir string) (task, error) {
	bad := func(format string, args ...any) (task, error) {
		return task{}, &badLineError{line: lineNo, msg: fmt.Sprintf(format, args...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var tl taskLine
	if err := dec.Decode(&tl); err != nil {
		return bad("not a task object: %v", jsonErr(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("unexpected data after the task object")
	}
	if tl.Module == "" {
		return bad(`"module" is required`)
	}
	t := task{line: lineNo, module: resolve(baseDir, tl.Module), fn: tl.Func, args: tl.Args, env: tl.Env, key: tl.Key}
	if tl.Input != nil && tl.InputBase64 != nil {
		return bad(`give "input" or "input_base64", not both`)
	}
	if tl.Input != nil {
		t.input = []byte(*tl.Input)
	}
	if tl.InputBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*tl.InputBase64)
		if err != nil {
			return bad(`"input_base64": %v`, err)
		}
		t.input = b
	}
	if tl.Timeout != "" {
		d, err := time.ParseDuration(tl.Timeout)
		if err != nil || d < 0 {
			return bad(`"timeout" %q: want a duration such as "500ms" or "2s"`, tl.Timeout)
		}
		t.timeout = d
	}
	if len(tl.Fuel) > 0 && string(tl.Fuel) != "null" {
		n, err := strconv.ParseUint(string(tl.Fuel), 10, 64)
		if err != nil {
			return bad(`"fuel" %s: want a whole number of instructions, such as 1000000`, tl.Fuel)
		}
		t.fuel = n
	}
	if tl.AllowHosts != nil {
		for _, p := range tl.AllowHosts {
			if err := httpcap.CheckPattern(p); err != nil {
				return bad(`"allow_hosts": %v`, err)
			}
		}
		t.allowHosts = append([]string{}, tl.AllowHosts...)
	}
	if len(tl.Require) > 0 {
		if err := checkRequireLine(tl.Require); err != nil {
			return bad("%v", err)
		}
		t.require = tl.Require
	}
	for k, v := range tl.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return bad(`"env": invalid variable %q`, k)
		}
	}
	for _, a := range tl.Args {
		if strings.Contains(a, "\x00") {
			return bad(`"args": an argument contains a NUL byte`)
		}
	}
	for _, spec := range tl.Mounts {
		m, err := parseMount(spec, baseDir)
		if err != nil {
			return bad(`"mounts": %v`, err)
		}
		t.mounts = append(t.mounts, m)
	}
	return t, nil
}

// jsonErr shortens encoding/json's messages ("json: cannot unmarshal...").
func jsonErr(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "invalid JSON: unexpected end of line"
	}
	return err.Error()
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
)

type mapFlags struct {
	poolFlags
	fn     string
	lines  string
	format string
}

// mapLine is one result of map --format jsonl.
type mapLine struct {
	Input string `json:"input"`
	Line  int    `json:"line,omitempty"` // with --lines: the input's line number
	OK    bool   `json:"ok"`
	payload
	Stderr     string  `json:"stderr,omitempty"`
	Error      string  `json:"error,omitempty"`
	ErrorKind  string  `json:"error_kind,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// mapInput is what map keeps about each job to print its outcome.
type mapInput struct {
	name string // file name, or the line's text
	line int    // line number with --lines
}

func (a *app) mapCmd() *cobra.Command {
	var f mapFlags
	cmd := &cobra.Command{
		Use:   "map MODULE INPUT...",
		Short: "Run one task per input file (or per line with --lines) on a pool of workers",
		Long: `Run one task per input on a pool of workers: each INPUT file's content (or,
with --lines FILE|-, each line) is the input of --func NAME, or the stdin of
the module if it is a WASI command.

Outputs are printed in input order (--unordered: as they complete), each
ending with a newline; a failure prints "input NAME: error" on stderr and the
rest go on (--fail-fast: the rest are cancelled). --format jsonl prints one
JSON object per input instead:
  {"input": "a.txt", "ok": true, "output": "...", "duration_ms": 1.2}
  {"input": "b.txt", "ok": false, "error": "...", "error_kind": "trap", "duration_ms": 0.4}

` + exitHelp,
		Example: `  wasmpool map sha256.wasm --func sha256 --mode process --workers 4 *.txt
  seq 1 30 | wasmpool map fib.wasm --func fib --lines - --unordered --format jsonl`,
		Args: minArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMap(cmd, &f, args[0], args[1:])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.fn, "func", "", "exported function to call (required unless MODULE is a WASI command)")
	fs.StringVar(&f.lines, "lines", "", `one task per line of this file ("-" for stdin) instead of per INPUT file`)
	fs.StringVar(&f.format, "format", "text", "output format: text or jsonl")
	f.poolFlags.add(fs)
	return cmd
}

func (a *app) runMap(cmd *cobra.Command, f *mapFlags, path string, inputs []string) error {
	if f.format != "text" && f.format != "jsonl" {
		return usagef("--format %q: want text or jsonl", f.format)
	}
	switch {
	case f.lines != "" && len(inputs) > 0:
		return usagef("give INPUT files or --lines, not both")
	case f.lines == "" && len(inputs) == 0:
		return usagef("no inputs: give INPUT files, or --lines FILE|-")
	}
	cfg, err := f.poolConfig()
	if err != nil {
		return err
	}
	if _, err := statModule(path); err != nil {
		return err
	}
	for _, in := range inputs {
		if _, err := os.Stat(in); err != nil {
			return fileError("input", in, err)
		}
	}
	var lineSrc io.Reader
	switch f.lines {
	case "":
	case "-":
		lineSrc = a.stdin
	default:
		file, err := os.Open(f.lines)
		if err != nil {
			return fileError("--lines", f.lines, err)
		}
		defer file.Close()
		lineSrc = file
	}

	ctx := a.ctx
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	s := &session{e: e}
	defer s.close(ctx)
	a.started(path)
	m, err := e.CompileFile(ctx, path)
	if err != nil {
		return err
	}
	a.module = m.Name()
	if x, err := funcExport(m, f.fn); err != nil {
		return err
	} else if len(x.Params) > 0 {
		return usagef("%s %s takes parameters: map calls SDK tasks (signature () -> i32), which read their input", f.fn, x.Signature())
	}
	if err := s.startPool(ctx, &f.poolFlags, cfg, a.stderr); err != nil {
		return err
	}

	total := len(inputs)
	if lineSrc != nil {
		total = -1
	}
	prog, err := newProgress(f.progress, a.stdout, a.stderr, total)
	if err != nil {
		return err
	}
	mk := func(in mapInput, data []byte) *job {
		label := in.name
		if in.line > 0 {
			label = fmt.Sprintf("line %d", in.line)
		}
		return &job{label: label, meta: in, task: engine.Task{Module: m, Func: f.fn, Input: data}}
	}
	var next func() (*job, bool)
	if lineSrc != nil {
		next = lineJobs(lineSrc, mk)
	} else {
		next = fileJobs(inputs, mk)
	}

	sum := runJobs(ctx, s.x, next, s.options(&f.poolFlags), prog, func(o outcome) {
		in := o.job.meta.(mapInput)
		if f.format == "jsonl" {
			ml := mapLine{Input: in.name, Line: in.line, OK: o.err == nil, Stderr: string(o.res.Stderr), DurationMS: millis(o.res.Duration)}
			if o.err == nil {
				ml.payload = newPayload(o.res.Output)
			} else {
				ml.Error, ml.ErrorKind = errorLine(m.Name(), o.err), errorKind(o.err)
			}
			writeOut(prog, a.stdout, jsonLine(ml))
			return
		}
		if len(o.res.Stderr) > 0 {
			printLine(prog, a.stderr, string(bytes.TrimRight(o.res.Stderr, "\n")))
		}
		if o.err != nil {
			printLine(prog, a.stderr, fmt.Sprintf("wasmpool: input %s: %s", o.job.label, errorLine(m.Name(), o.err)))
			return
		}
		out := o.res.Output
		if len(out) == 0 || out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		writeOut(prog, a.stdout, out)
	})
	prog.finish()
	return a.finishRun(sum, "inputs", f.failFast)
}

// finishRun turns a map or batch summary into the command's end.
func (a *app) finishRun(sum summary, what string, failFast bool) error {
	switch {
	case sum.interrupted:
		report(a.stderr, "interrupted: running tasks cancelled after %d %s", sum.total, what)
	case sum.failed > 0 && failFast:
		report(a.stderr, "stopped at the first failure (%d %s done); the rest were cancelled", sum.total, what)
	case sum.failed > 0:
		report(a.stderr, "%d of %d %s failed", sum.failed, sum.total, what)
	default:
		return nil
	}
	return &exitStatus{code: sum.status}
}

// fileJobs makes one job per file, reading each only when its turn comes.
func fileJobs(names []string, mk func(mapInput, []byte) *job) func() (*job, bool) {
	i := 0
	return func() (*job, bool) {
		if i >= len(names) {
			return nil, false
		}
		name := names[i]
		i++
		data, err := os.ReadFile(name)
		j := mk(mapInput{name: name}, data)
		if err != nil {
			j.err = fileError("input", name, err)
		}
		return j, true
	}
}

// lineJobs makes one job per line of r (without its line ending), reading
// lazily: a line is read only when the pool has room for it.
func lineJobs(r io.Reader, mk func(mapInput, []byte) *job) func() (*job, bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	ended := false
	return func() (*job, bool) {
		if ended {
			return nil, false
		}
		line, err := br.ReadBytes('\n')
		if err != nil {
			ended = true
			if !errors.Is(err, io.EOF) {
				n++
				j := mk(mapInput{line: n}, nil)
				j.err = fmt.Errorf("reading line %d: %w", n, err)
				return j, true
			}
			if len(line) == 0 {
				return nil, false
			}
		}
		n++
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return mk(mapInput{name: string(line), line: n}, line), true
	}
}

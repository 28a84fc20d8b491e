package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// map's output formats (--format).
const (
	formatText  = "text"  // each line of output tagged with its input; failures in place
	formatRaw   = "raw"   // the outputs alone, one after another; failures on stderr
	formatJSONL = "jsonl" // one JSON object per input
)

type mapFlags struct {
	poolFlags
	fn        string
	lines     string
	format    string
	env       []string
	mounts    []string
	glob      string
	outputDir string
	verbose   bool
}

// mapLine is one result of map --format jsonl.
type mapLine struct {
	Input string `json:"input"`
	Line  int    `json:"line,omitempty"` // with --lines: the input's line number
	taskFields
}

func (a *app) mapCmd() *cobra.Command {
	var f mapFlags
	cmd := &cobra.Command{
		Use:   "map MODULE INPUT... [-- ARGS...]",
		Short: "Run a module over many inputs (files, directories, lines) on a pool of workers",
		Long: `Run one task per input on a pool of workers: "run this program over these files".

Inputs are INPUT files, every file under an INPUT directory (recursively;
--glob PATTERN keeps the files whose name matches, e.g. '*.txt'), or with
--lines FILE|- each line of a file or of stdin.

Each input is the stdin of the module if it is a WASI command, or the input
of --func NAME (an SDK task). ARGS after -- are the command's arguments for
every input; in them {} stands for the input (the file's path, or the line)
and then the input is passed by name only, not on stdin, as xargs -I and GNU
parallel do: the program opens the file itself, through a --mount. Also
{/} the base name, {//} the directory, {.} the input without its extension,
{/.} the base name without it. --env and --mount give every task the same
variables and directories, as for wasmpool run.

Output (--format):
  text   each line a task wrote, prefixed by its input and a tab (as GNU
         parallel --tag); a failure is a line in its place,
         "INPUT<tab>wasmpool: ERROR", after what the task wrote before it
         failed; the guest's stderr likewise, on stderr
  raw    the outputs alone, each ending with a newline; failures on stderr
  jsonl  one JSON object per input:
         {"input": "a.txt", "ok": true, "output": "...", "exit_code": 0, "duration_ms": 1.2}
         {"input": "b.txt", "ok": false, "output": "what it wrote", "error": "...",
          "error_kind": "trap", "stack": "...", "duration_ms": 0.4}
Results come in input order (--unordered: as they complete); a failure does
not stop the rest (--fail-fast: it does). --output-dir DIR writes each
input's output to DIR/INPUT.out (a line's to DIR/line-N.out) instead, and
its stderr and failure, if any, to DIR/INPUT.err; a relative INPUT keeps its
path under DIR.

A WASI command runs in a fresh instance for every input: --mode thread
(warm instances reused) is for SDK tasks, and refused for a command.

` + exitHelp,
		Example: `  wasmpool map sha256.wasm --func sha256 --mode process --workers 4 *.txt
  seq 1 30 | wasmpool map fib.wasm --func fib --lines - --unordered --format jsonl
  wasmpool map wc.wasm docs/ --glob '*.md' --mount .:/:ro -- {}
  wasmpool map tool.wasm data/ --output-dir results --mount data:/data:ro -- /data/{/}`,
		Args: minArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, guestArgs := args[1:], []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 1 {
				inputs, guestArgs = args[1:dash], args[dash:]
			}
			return a.runMap(cmd, &f, args[0], inputs, guestArgs)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.fn, "func", "", "exported function to call (required unless MODULE is a WASI command)")
	fs.StringVar(&f.lines, "lines", "", `one task per line of this file ("-" for stdin) instead of per INPUT file`)
	fs.StringVar(&f.format, "format", formatText, "output format: text (tagged with each input), raw or jsonl")
	fs.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE for every task (repeat)")
	fs.StringArrayVar(&f.mounts, "mount", nil, "host directory HOST:GUEST[:ro] every task may see (repeat)")
	fs.StringVar(&f.glob, "glob", "*", "in INPUT directories, only the files whose base name matches, e.g. '*.txt'")
	fs.StringVar(&f.outputDir, "output-dir", "", "write each input's output to DIR/INPUT.out (and stderr, failure to .err)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "on a trap, print the guest's wasm stack (function names; source lines with DWARF)")
	f.poolFlags.add(fs)
	return cmd
}

func (a *app) runMap(cmd *cobra.Command, f *mapFlags, path string, inputs, guestArgs []string) error {
	switch f.format {
	case formatText, formatRaw, formatJSONL:
	default:
		return usagef("--format %q: want text, raw or jsonl", f.format)
	}
	switch {
	case f.lines != "" && len(inputs) > 0:
		return usagef("give INPUT files or --lines, not both")
	case f.lines == "" && len(inputs) == 0:
		return usagef("no inputs: give INPUT files or directories, or --lines FILE|-")
	case f.glob != "*" && f.lines != "":
		return usagef("--glob picks files in INPUT directories: it does not apply to --lines")
	}
	cfg, err := f.poolConfig()
	if err != nil {
		return err
	}
	env, err := parseEnv(f.env)
	if err != nil {
		return err
	}
	mounts, err := parseMounts(f.mounts)
	if err != nil {
		return err
	}
	if _, err := statModule(path); err != nil {
		return err
	}
	var ins []mapInput
	if f.lines == "" {
		files, err := expandInputs(inputs, f.glob)
		if err != nil {
			return err
		}
		ins = make([]mapInput, len(files))
		for i, name := range files {
			ins[i].name = name
		}
		if f.outputDir != "" {
			outs, err := outputNames(files, f.outputDir)
			if err != nil {
				return err
			}
			for i := range ins {
				ins[i].out = outs[i]
			}
		}
	}
	if f.outputDir != "" {
		if err := os.MkdirAll(f.outputDir, 0o755); err != nil {
			return fileError("--output-dir", f.outputDir, err)
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
		return usagef("function %q %s takes parameters: map calls SDK tasks (signature () -> i32), which read their input", f.fn, x.Signature())
	}
	if f.fn == "" && cmd.Flags().Changed("mode") && cfg.Mode == pool.Threads && !f.clustered() {
		return usagef("--mode thread: module %q is a WASI command, which runs in a fresh instance for every input in "+
			"either mode (warm instances are for SDK tasks); leave --mode out", m.Name())
	}
	if err := s.startPool(ctx, &f.poolFlags, cfg, a.stderr); err != nil {
		return err
	}

	total := len(ins)
	if lineSrc != nil {
		total = -1
	}
	prog, err := newProgress(f.progress, a.stdout, a.stderr, total)
	if err != nil {
		return err
	}
	byName := hasPlaceholder(guestArgs)
	mk := func(in mapInput, data []byte) *item {
		args := guestArgs
		if byName {
			args, data = substitute(guestArgs, in.name), nil
		}
		j := &item{label: in.label(), meta: in, task: engine.Task{
			Module: m, Func: f.fn, Input: data, Args: args, Env: env, Mounts: mounts,
		}}
		grantHosts(&j.task, f.allowHosts)
		return j
	}
	var next func() (*item, bool)
	if lineSrc != nil {
		next = lineItems(lineSrc, f.outputDir, mk)
	} else {
		next = fileItems(ins, byName, mk)
	}

	w := &mapWriter{a: a, f: f, prog: prog, module: m.Name()}
	sum := runItems(ctx, s.x, next, s.options(&f.poolFlags, prog), prog, w.emit)
	prog.finish()
	s.reportJob(a.stderr, sum)
	if err := a.finishRun(sum, "inputs", f.failFast); err != nil {
		return err
	}
	if w.writeFailed {
		return &exitStatus{code: exitFailed}
	}
	return nil
}

// mapWriter prints each outcome of a map in the chosen format.
type mapWriter struct {
	a           *app
	f           *mapFlags
	prog        *progress
	module      string
	writeFailed bool // a result file could not be written
}

func (w *mapWriter) emit(o outcome) {
	in := o.item.meta.(mapInput)
	if in.out != "" {
		w.writeFiles(in, o)
	}
	switch w.f.format {
	case formatJSONL:
		ml := mapLine{Input: in.name, Line: in.line, taskFields: newTaskFields(o.item.task, o.res, o.err, w.module)}
		if in.out != "" {
			ml.payload, ml.OutputFile = payload{}, in.out+".out"
		}
		writeOut(w.prog, w.a.stdout, jsonLine(ml))
	case formatRaw:
		if in.out == "" && (o.err == nil || len(o.res.Output) > 0) {
			out := o.res.Output
			if len(out) == 0 || out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			writeOut(w.prog, w.a.stdout, out)
		}
		if len(o.res.Stderr) > 0 {
			printLine(w.prog, w.a.stderr, string(bytes.TrimRight(o.res.Stderr, "\n")))
		}
		if o.err != nil {
			w.failure(w.a.stderr, "", fmt.Sprintf("wasmpool: input %s: ", in.label()), o)
		}
	default:
		tag := in.name
		if in.out == "" {
			writeOut(w.prog, w.a.stdout, tagLines(tag, o.res.Output))
		}
		if len(o.res.Stderr) > 0 {
			printLine(w.prog, w.a.stderr, string(bytes.TrimRight(tagLines(tag, o.res.Stderr), "\n")))
		}
		switch {
		case o.err == nil:
		case in.out != "":
			w.failure(w.a.stderr, "", fmt.Sprintf("wasmpool: input %s: ", in.label()), o)
		default:
			w.failure(w.a.stdout, tag+"\t", "wasmpool: ", o)
		}
	}
}

// failure prints a failed task's error line (and with --verbose its trap's
// stack), each line after prefix.
func (w *mapWriter) failure(out io.Writer, prefix, lead string, o outcome) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s%s\n", prefix, lead, errorLine(w.module, o.err))
	if w.f.verbose {
		writeStack(&b, prefix, trapStack(o.err))
	}
	if out == w.a.stdout {
		writeOut(w.prog, out, b.Bytes())
	} else {
		printLine(w.prog, out, string(bytes.TrimRight(b.Bytes(), "\n")))
	}
}

// writeFiles writes an input's result files: OUT.out with its output
// (what it wrote before failing, too), OUT.err with its stderr and failure
// when there is either. A stale OUT.err from an earlier run is removed.
func (w *mapWriter) writeFiles(in mapInput, o outcome) {
	fail := func(err error) {
		w.writeFailed = true
		printLine(w.prog, w.a.stderr, fmt.Sprintf("wasmpool: input %s: writing its result: %v", in.label(), err))
	}
	if err := os.MkdirAll(filepath.Dir(in.out), 0o755); err != nil {
		fail(err)
		return
	}
	if err := os.WriteFile(in.out+".out", o.res.Output, 0o644); err != nil {
		fail(err)
	}
	var errText bytes.Buffer
	errText.Write(o.res.Stderr)
	if o.err != nil {
		if errText.Len() > 0 && !bytes.HasSuffix(errText.Bytes(), []byte("\n")) {
			errText.WriteByte('\n')
		}
		fmt.Fprintf(&errText, "wasmpool: %s\n", errorLine(w.module, o.err))
		writeStack(&errText, "", trapStack(o.err))
	}
	if errText.Len() == 0 {
		if err := os.Remove(in.out + ".err"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fail(err)
		}
		return
	}
	if err := os.WriteFile(in.out+".err", errText.Bytes(), 0o644); err != nil {
		fail(err)
	}
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

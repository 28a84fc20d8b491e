package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
)

// resultLine is one line of batch output, as DESIGN.md specifies it.
type resultLine struct {
	Line int `json:"line"`
	taskFields
}

func (a *app) batchCmd() *cobra.Command {
	var f poolFlags
	cmd := &cobra.Command{
		Use:   "batch FILE.jsonl|-",
		Short: "Run one task per JSON line, each its own module/func/args/env/mounts/input",
		Long: `Run one task per line of a JSON-lines file (or stdin for -) on a pool of
workers, and print one JSON result line per task, with the number of the line
it came from. Blank lines are skipped.

Task line (only "module" is required; relative paths are relative to the
batch file's directory, or the current one for -):
  {"module": "path.wasm", "func": "name", "args": ["a"], "env": {"K": "V"},
   "mounts": ["hostdir:/guest", "hostdir2:/ro:ro"], "input": "text",
   "input_base64": "...", "timeout": "2s", "fuel": 1000000,
   "allow_hosts": ["api.example.com", "*.example.org"], "require": {"gpu": "a100"},
   "key": "k1"}
allow_hosts are the hosts the guest may reach over HTTP (guest.HTTP), in
place of --allow-host's ([] for none). require (with --nats) names labels
the worker that runs the line must have (its --label), over --require's.
key names the line's task in its --job (default: the line's position): run
again, a batch skips the keys the job has finished, and prints their kept
results in their place.

Result line (output as text when it is valid UTF-8, else output_base64):
  {"line": 1, "ok": true, "output": "text", "stderr": "...", "exit_code": 0,
   "error": "...", "error_kind": "...", "stack": "...", "duration_ms": 1.2,
   "fuel": 1234, "worker": "..."}
A failed task keeps its output and stderr: what it wrote before it failed.
exit_code is the guest's own exit code when it exited (a command that ran
to its end: 0), and absent when it did not (an export, a trap, a timeout).
stack is a trap's wasm stack; fuel, the instructions a task with a fuel
budget ran (a line's "fuel", or --fuel); worker names the cluster worker
(--nats). error_kind is one of trap, timeout, cancelled, memory, output,
exit, task, bad_module, no_function, bad_line, crash (a worker process died:
--isolation subprocess), fuel (the budget ran out), unavailable (the broker
could not be reached), capability (refused for a capability the host lacks),
no_worker (no live cluster worker had what the line requires for
--route-wait). A malformed line, or
one naming a module file that is not there, gets a bad_line result and the
batch goes on. Each module is compiled once.

A WASI command runs in a fresh instance whatever --mode says.

` + exitHelp,
		Args: exactArgs(1, "FILE.jsonl (or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBatch(cmd, &f, args[0])
		},
	}
	f.add(cmd.Flags())
	return cmd
}

func (a *app) runBatch(cmd *cobra.Command, f *poolFlags, name string) error {
	cfg, err := f.poolConfig()
	if err != nil {
		return err
	}
	src, baseDir := a.stdin, ""
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return fileError("batch file", name, err)
		}
		defer file.Close()
		src, baseDir = file, filepath.Dir(name)
	}
	ctx := a.ctx
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	s := &session{e: e}
	defer s.close(ctx)
	if err := s.startPool(ctx, f, cfg, a.stderr); err != nil {
		return err
	}
	a.started("")
	prog, err := newProgress(f.progress, a.stdout, a.stderr, -1)
	if err != nil {
		return err
	}

	mods := &moduleSet{e: e, byPath: map[string]compiled{}, allowHosts: f.allowHosts, clustered: f.clustered()}
	next := batchItems(src, baseDir, func(t task) (*item, error) { return mods.item(a, t) })
	sum := runItems(ctx, s.x, next, s.options(f, prog), prog, func(o outcome) {
		rl := resultLine{Line: o.item.meta.(int), taskFields: newTaskFields(o.item.task, o.res, o.err, o.item.label)}
		if rl.ErrorKind == kindBadLine {
			rl.Error = oneLine(o.err.Error()) // names the line, not a module
		}
		writeOut(prog, a.stdout, jsonLine(rl))
	})
	prog.finish()
	s.reportJob(a.stderr, sum)
	return a.finishRun(sum, "lines", f.failFast)
}

// compiled is a module compiled for a batch, or why it could not be.
type compiled struct {
	m   *engine.Module
	err error
}

// moduleSet compiles each module of a batch once, failures included: a
// module that does not compile fails every line naming it, with one compile.
type moduleSet struct {
	e      *engine.Engine
	byPath map[string]compiled
	// allowHosts are --allow-host's, for lines without "allow_hosts".
	allowHosts []string
	clustered  bool // lines may "require" labels of their worker
}

func (s *moduleSet) item(a *app, t task) (*item, error) {
	c, ok := s.byPath[t.module]
	if !ok {
		c.m, c.err = s.e.CompileFile(a.ctx, t.module)
		s.byPath[t.module] = c
	}
	if c.err != nil {
		return nil, c.err
	}
	if t.require != nil && !s.clustered {
		return nil, &badLineError{line: t.line, msg: `"require" needs --nats or --nats-embedded: it names labels of a cluster's workers`}
	}
	for _, m := range t.mounts {
		if err := checkMount(m); err != nil {
			return nil, &badLineError{line: t.line, msg: fmt.Sprintf(`"mounts": %v`, err)}
		}
	}
	j := &item{task: engine.Task{
		Module: c.m, Func: t.fn, Input: t.input, Args: t.args, Env: t.env, Mounts: t.mounts, Timeout: t.timeout, Fuel: t.fuel,
	}, require: t.require}
	hosts := s.allowHosts
	if t.allowHosts != nil {
		hosts = t.allowHosts // the line's own, in place of --allow-host's
	}
	grantHosts(&j.task, hosts)
	j.key = t.key
	return j, nil
}

// batchItems reads task lines lazily, skipping blank ones; a line that cannot
// become a task becomes an item that has already failed.
func batchItems(r io.Reader, baseDir string, build func(task) (*item, error)) func() (*item, bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	ended := false
	return func() (*item, bool) {
		for !ended {
			data, err := br.ReadBytes('\n')
			if err != nil {
				ended = true
				if !errors.Is(err, io.EOF) {
					n++
					return &item{label: fmt.Sprintf("line %d", n), meta: n, err: fmt.Errorf("reading line %d: %w", n, err)}, true
				}
			}
			if len(bytes.TrimSpace(data)) == 0 {
				if len(data) > 0 {
					n++
				}
				continue
			}
			n++
			label := fmt.Sprintf("line %d", n)
			t, err := parseTaskLine(n, data, baseDir)
			if err != nil {
				return &item{label: label, meta: n, err: err}, true
			}
			j, err := build(t)
			if err != nil {
				return &item{label: filepath.Base(t.module), meta: n, err: err}, true
			}
			j.label, j.meta = filepath.Base(t.module), n
			return j, true
		}
		return nil, false
	}
}

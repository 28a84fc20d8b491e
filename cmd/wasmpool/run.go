package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

type runFlags struct {
	engineFlags
	isolationFlag
	fn      string
	input   string
	env     []string
	mounts  []string
	timeout time.Duration
	fuel    uint64
	params  string
	verbose bool
	allowHostFlag
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run MODULE [-- ARGS...]",
		Short: "Run one task: a WASI command, or one exported function",
		Long: `Run one task in a fresh sandbox.

Without --func, MODULE must be a WASI command (it exports _start): ARGS are its
arguments, its stdin, stdout and stderr are wasmpool's, passed through as it
reads and writes them (stdin is the file named by --input instead, if given),
and its exit code is wasmpool's.

With --func NAME, the export is called: an SDK task (signature () -> i32)
gets its input from --input FILE|- (or, without --input, from stdin when it
is a pipe or a file, not a terminal) and its output is printed on stdout;
any other export is called with --params "1,2" and its results are printed.

A trap prints one line naming the module and the trap, then, for a command
(or with --verbose), the guest's wasm stack as wazero prints it: function
names, and source lines when the module carries DWARF.

The guest sees only what it is given: --env variables (none of the host's)
and --mount directories (no other file).

` + exitHelp,
		Example: `  wasmpool run hello.wasm
  echo hi | wasmpool run upper.wasm --func upper
  wasmpool run add.wasm --func add --params 2,3
  wasmpool run tool.wasm --env K=V --mount ./data:/data:ro -- ls /data`,
		Args: minArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runTask(cmd, &f, args[0], args[1:])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.fn, "func", "", "exported function to call (default: run the WASI command)")
	fs.StringVar(&f.input, "input", "", `task input: a file, or "-" for stdin`)
	fs.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE for the guest (repeat)")
	fs.StringArrayVar(&f.mounts, "mount", nil, "host directory HOST:GUEST[:ro] the guest may see (repeat)")
	fs.DurationVar(&f.timeout, "timeout", 0, "stop the task after this long, e.g. 500ms, 2s (default none)")
	fs.Uint64Var(&f.fuel, "fuel", 0, "stop the task after this many WebAssembly instructions, the same on every machine (default none)")
	fs.StringVar(&f.params, "params", "", `raw arguments for a non-SDK export, comma-separated, e.g. "1,2"`)
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "on a trap of an export, print the guest's wasm stack too (a command's is always printed); with --fuel, print the fuel used")
	f.engineFlags.add(fs)
	f.isolationFlag.add(fs)
	f.allowHostFlag.add(fs, allowHostUsage)
	return cmd
}

func (a *app) runTask(cmd *cobra.Command, f *runFlags, path string, args []string) error {
	restoreGC := startupGC()
	defer restoreGC()
	if err := checkTimeout(f.timeout); err != nil {
		return err
	}
	if err := f.allowHostFlag.check(); err != nil {
		return err
	}
	f.engineFlags.capabilities = clientCapabilities()
	var pcfg pool.Config
	if err := f.isolationFlag.apply(&pcfg); err != nil {
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
	if f.params != "" && f.fn == "" {
		return usagef("--params needs --func: the export to call")
	}
	if _, err := statModule(path); err != nil {
		return err
	}
	input, haveInput, err := a.readInput(f.input)
	if err != nil {
		return err
	}

	ctx := a.ctx
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	defer e.Close(ctx)
	a.started(path)
	m, err := e.CompileFile(ctx, path)
	restoreGC() // start-up is over: the guest's memory is collected as usual
	if err != nil {
		return err
	}
	a.module = m.Name()

	t := engine.Task{Module: m, Func: f.fn, Input: input, Args: args, Env: env, Mounts: mounts, Timeout: f.timeout, Fuel: f.fuel}
	grantHosts(&t, f.allowHosts)
	x, err := funcExport(m, f.fn)
	if err != nil {
		return err
	}
	var results []engine.Export
	if f.fn == "" {
		switch {
		case pcfg.Isolation == pool.InProcess:
			// As wazero run does: the command's stdio is ours, as it happens
			// (an interactive stdin, a long-running pipeline), still under
			// the output limit and the timeout.
			if !haveInput && a.stdin != nil {
				t.Stdin = a.stdin
			}
			t.Stdout, t.Stderr = a.stdout, a.stderr
		case !haveInput && piped(a.stdin):
			// Streams do not cross into a worker process: it gets stdin
			// whole, and the output comes back when the command ends.
			if t.Input, err = io.ReadAll(a.stdin); err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
		}
	} else {
		if f.params != "" || !x.IsTask() {
			if t.Params, err = parseParams(f.params, x); err != nil {
				return usagef("--params: %v", err)
			}
		}
		if haveInput && !x.IsTask() {
			return usagef("--input: function %q %s is not an SDK task (signature () -> i32); use --params", f.fn, x.Signature())
		}
		if !haveInput && t.Params == nil && piped(a.stdin) {
			// "echo hi | wasmpool run upper.wasm --func upper": the pipe is
			// the input, as for any filter. A terminal is not read: nobody
			// may be typing, and the task would wait for them.
			if t.Input, err = io.ReadAll(a.stdin); err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
		}
		results = []engine.Export{x}
	}
	res, err := runOne(ctx, e, pcfg, t)
	_, werr := a.stdout.Write(res.Output)
	_, _ = a.stderr.Write(res.Stderr)
	if err == nil && len(results) == 1 && res.Values != nil {
		_, werr = fmt.Fprintln(a.stdout, formatValues(res.Values, results[0].Results))
	}
	if f.fuel > 0 && f.verbose {
		report(a.stderr, "used %d of its %d instructions of fuel", res.Fuel, f.fuel)
	}
	if err != nil {
		var exit *engine.ExitError
		if errors.As(err, &exit) && f.fn == "" && exitCode(err) == int(exit.Code) {
			// A command's own exit code is wasmpool's: it said what it had to.
			return &exitStatus{code: int(exit.Code)}
		}
		if stack := trapStack(err); stack != "" && (f.fn == "" || f.verbose) {
			// As wazero run does for a command: the line, then where.
			report(a.stderr, "%s", errorLine(a.module, err))
			writeStack(a.stderr, "", stack)
			return &exitStatus{code: exitCode(err)}
		}
		return err
	}
	if werr != nil && !errors.Is(werr, os.ErrClosed) {
		return fmt.Errorf("writing the output: %w", werr)
	}
	return nil
}

// runOne runs t: in this process, or with --isolation subprocess in a
// one-worker pool whose worker process runs it.
func runOne(ctx context.Context, e *engine.Engine, cfg pool.Config, t engine.Task) (engine.Result, error) {
	if cfg.Isolation == pool.InProcess {
		return e.Run(ctx, t)
	}
	cfg.Mode, cfg.Workers = pool.Processes, 1
	p, err := pool.New(e, cfg)
	if err != nil {
		return engine.Result{}, err
	}
	defer p.Close()
	return p.Submit(ctx, t).Result(context.WithoutCancel(ctx))
}

// readInput returns the task's input: the named file, or stdin for "-".
// The boolean says whether there was one.
func (a *app) readInput(name string) ([]byte, bool, error) {
	switch {
	case name == "-":
		if a.stdin == nil {
			return nil, true, nil
		}
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, false, fmt.Errorf("reading stdin: %w", err)
		}
		return b, true, nil
	case name != "":
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, false, fileError("input", name, err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

// funcExport is the export --func names, or with no --func checks that the
// module is a WASI command; either mistake is a usage error that lists what
// the module exports.
func funcExport(m *engine.Module, name string) (engine.Export, error) {
	if name == "" {
		if !m.IsCommand() {
			return engine.Export{}, usagef("module %q is not a WASI command (it has no _start): name a function with --func (exports: %s)",
				m.Name(), exportList(m))
		}
		return engine.Export{}, nil
	}
	for _, x := range m.Exports() {
		if x.Name == name {
			return x, nil
		}
	}
	if list := exportList(m); list != "none" || !m.IsCommand() {
		return engine.Export{}, usagef("module %q has no exported function %q (exports: %s)", m.Name(), name, list)
	}
	return engine.Export{}, usagef("module %q has no exported function %q: it is a WASI command, run without --func", m.Name(), name)
}

// exportList names the callable exports with their signatures, for messages.
func exportList(m *engine.Module) string {
	var names []string
	for _, x := range m.Exports() {
		if x.Name == "_start" || x.Name == "_initialize" {
			continue
		}
		names = append(names, x.Name+" "+x.Signature())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

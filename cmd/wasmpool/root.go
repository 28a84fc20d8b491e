package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// app is what every command runs with: the context (cancelled on SIGINT or
// SIGTERM) and the three standard streams, injectable for tests.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// ran is set once a command's RunE starts: an error before that is
	// cobra's (unknown command, bad flag, wrong arguments), a usage error.
	ran bool
	// module names the module of the command, for error lines.
	module string
}

func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	defer func() {
		// A panic is a bug in wasmpool, never the user's mistake: one line,
		// and the stack only when asked for (WASMPOOL_DEBUG=1).
		if v := recover(); v != nil {
			report(stderr, "internal error (a bug in wasmpool, please report it): %v", v)
			if os.Getenv("WASMPOOL_DEBUG") != "" {
				_, _ = stderr.Write(debug.Stack())
			}
			code = exitFailed
		}
	}()
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return a.fail(cmd, err)
}

// fail prints err as one line (unless it was already reported) and returns
// the exit status.
func (a *app) fail(cmd *cobra.Command, err error) int {
	var status *exitStatus
	if errors.As(err, &status) {
		return status.code
	}
	var usage *usageError
	if !a.ran && !errors.As(err, &usage) {
		// cobra's own errors: unknown command or flag, wrong arguments.
		err = &usageError{msg: err.Error(), hint: true}
	}
	report(a.stderr, "%s", errorLine(a.module, err))
	if errors.As(err, &usage) && usage.hint && cmd != nil {
		fmt.Fprintf(a.stderr, "see '%s --help'\n", cmd.CommandPath())
	}
	return exitCode(err)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "wasmpool",
		Short: "Run WebAssembly tasks in sandboxes, one at a time or on a pool of workers",
		Long: `wasmpool runs tasks compiled to WebAssembly inside wazero sandboxes: each with
a real timeout, a memory cap, and no file, environment variable or network it
was not given.

` + exitHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A bare "wasmpool" shows the help; "wasmpool nosuch" is an unknown
		// command (a usage error), which needs the root to be runnable.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error(), hint: true}
	})
	root.AddCommand(
		a.runCmd(),
		a.inspectCmd(),
		a.mapCmd(),
		a.batchCmd(),
		a.benchCmd(),
		a.workerCmd(),
		a.serveNATSCmd(),
		a.clusterCmd(),
		a.jobsCmd(),
		a.jobCmd(),
		a.versionCmd(),
	)
	return root
}

// started marks the command as past argument checking: errors from here on
// are the command's own, not usage errors, unless they say so.
func (a *app) started(module string) {
	a.ran = true
	a.module = module
}

// minArgs and exactArgs check positional arguments as cobra's own checks
// do, but their errors are usage errors with the --help hint.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s: missing %s", cmd.Name(), what)
		}
		return nil
	}
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s: missing %s", cmd.Name(), what)
		}
		if len(args) > n {
			return usagef("%s: unexpected argument %q", cmd.Name(), args[n])
		}
		return nil
	}
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/pool"
)

// workerCmd is the hidden "worker" command. With --child, wasmpool is a
// worker process of a --isolation process pool: it serves tasks over its
// stdin and stdout until the pool closes its stdin. wasmpool starts it
// itself (and so does any Go program whose pools fall back to the wasmpool
// on PATH); it is not run by hand.
func (a *app) workerCmd() *cobra.Command {
	var child bool
	cmd := &cobra.Command{
		Use:    "worker --child",
		Short:  "Serve as a worker process of a --isolation process pool (started by wasmpool itself)",
		Hidden: true,
		Args:   exactArgs(0, ""),
		RunE: func(*cobra.Command, []string) error {
			if !child {
				return usagef("wasmpool worker --child is started by wasmpool itself for --isolation process, " +
					"and talks a binary protocol on its stdin and stdout: it is not run by hand")
			}
			a.started("")
			if code := pool.RunChild(); code != exitOK {
				// RunChild said why on stderr.
				return &exitStatus{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&child, "child", false, "serve as a worker process over stdin and stdout")
	_ = cmd.Flags().MarkHidden("child")
	return cmd
}

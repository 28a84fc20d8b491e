package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// Routing from the command line: --require KEY=VALUE (map, batch) and a
// batch line's "require" name labels a task's worker must have; the
// cluster sends the task only to such a worker, and fails it after
// --route-wait if none is live (exit 69, error_kind "no_worker").

// parseRequire reads --require KEY=VALUE flags, as parseLabels reads a
// worker's --label: what one says, the other matches.
func parseRequire(flags []string) (map[string]string, error) {
	labels, err := parseLabels(flags)
	if err != nil {
		return nil, usagef("%s", strings.ReplaceAll(err.Error(), "--label", "--require"))
	}
	return labels, nil
}

// checkRequireLine checks a batch line's "require" object.
func checkRequireLine(labels map[string]string) error {
	if err := cluster.CheckLabels(labels); err != nil {
		return fmt.Errorf(`"require": %s`, strings.TrimPrefix(strings.Replace(err.Error(), "worker label", "label", 1), "cluster: "))
	}
	return nil
}

// submitItem submits j's task: to the session's cluster under its key in
// the job (--job), and with its own requirements when it has them (a batch
// line's, which only a cluster is given: see moduleSet.item); otherwise to
// p as it is.
func submitItem(ctx context.Context, p pool.Executor, j *item, opts runOptions) *future.Future[engine.Result] {
	if opts.submitCluster == nil || (j.require == nil && !opts.keyed) {
		return p.Submit(ctx, j.task)
	}
	var key string
	if opts.keyed {
		if key = j.key; key == "" {
			key = "#" + strconv.Itoa(j.index)
		}
	}
	var req cluster.Requirements
	if j.require != nil {
		req.Labels = j.require
	}
	return opts.submitCluster(ctx, j.task, req, key)
}

// submitCluster submits to the session's cluster with requirements of the
// task's own, its key in the job, and the session's other options
// (--at-most-once).
func (s *session) submitCluster(ctx context.Context, t engine.Task, req cluster.Requirements, key string) *future.Future[engine.Result] {
	opts := s.taskOpts
	opts.Require, opts.Key = req, key
	return s.cx.SubmitWith(ctx, t, opts)
}

// printRoutes is the table's part for the requirement sets in use.
func printRoutes(w io.Writer, routes []cluster.RouteStatus) error {
	if len(routes) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREQUIRES\tQUEUED\tIN FLIGHT\tWORKERS\tKEY")
	for _, r := range routes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", r.Requires, r.Queued, r.InFlight, r.Workers, r.Key)
	}
	return tw.Flush()
}

// Command wasmpool runs WebAssembly tasks in sandboxes, one at a time or on a
// pool of workers.
//
//	wasmpool run MODULE [-- ARGS...]   one task: a WASI command (its stdio passed through), or --func NAME
//	wasmpool map MODULE INPUT...       one task per input file, file of a directory, or line (--lines)
//	wasmpool batch FILE.jsonl|-        one task per JSON line, results as JSON lines
//	wasmpool inspect MODULE            imports, exports, memory, kind
//	wasmpool bench MODULE --func NAME  throughput and latency in each mode, for choosing one
//	wasmpool worker --nats URL         serve a NATS cluster: run the tasks submitted to it
//	wasmpool serve-nats                run a NATS JetStream broker for a small team
//	wasmpool cluster status --nats URL a cluster's workers, queue and rates, from its broker
//	wasmpool jobs --nats URL           the cluster's named jobs (map and batch --job) with their counts
//	wasmpool job NAME --nats URL       one job's counts (--tasks: each task); --cancel, --delete
//	wasmpool version
//
// # Exit status
//
// One table, the same for every command (see exit.go):
//
//	0    success
//	1    a task failed: the guest reported a failure (SDK error), or any other error
//	2    usage error: bad flag or argument, module or input file missing, no such function
//	3    bad module: not WebAssembly, or imports something this host does not provide
//	69   no live cluster worker has what the task requires (a --require
//	     label, a capability it grants, mounts) for --route-wait, as
//	     sysexits' EX_UNAVAILABLE: start such a worker
//	70   the guest trapped (unreachable, divide by zero, out-of-bounds access...)
//	71   the guest went over the memory limit (--memory)
//	72   the guest went over the output limit (--output-limit)
//	73   a worker process died under the task (--isolation subprocess)
//	74   the task used up its fuel (--fuel)
//	75   the NATS broker could not be reached for --unavailable-after, as
//	     sysexits' EX_TEMPFAIL: try again later
//	78   the task was refused: the worker that got it does not provide a
//	     capability the task grants (HTTP on a cluster worker started
//	     without --allow-host), as sysexits' EX_CONFIG: fix that worker
//	124  the task timed out (--timeout), as coreutils' timeout(1)
//	130  interrupted (SIGINT or SIGTERM): running tasks were cancelled; a
//	     guest that does not stop within a second is left behind
//
// For run of a WASI command, a non-zero exit code of the guest is the exit
// status of wasmpool itself (a code over 255 becomes 1). map and batch exit 0
// when every task succeeded; otherwise with the status of the first failed
// input in input order (with --fail-fast: of the failure that stopped the
// run), where a command's own non-zero exit counts as 1 and a malformed batch
// line as 2.
//
// map and batch run their tasks on a cluster instead of a local pool with
// --nats URL (or on a NATS node inside the process with --nats-embedded);
// their output and exit status are the same. --require KEY=VALUE (and a
// batch line's "require": {"KEY": "VALUE"}) sends a task only to workers
// started with that --label; a task granting a capability (--allow-host)
// goes only to workers that provide it, and one with mounts to workers
// started with --allow-mounts. A task no live worker can run waits
// --route-wait (1m), then fails with error_kind "no_worker" (exit 69).
//
// With --job NAME the tasks are a named job that outlives the command: run
// again with the same --job, the command prints every input's result in
// order, those the job kept as well, and runs only the inputs the job has
// not finished (map's keyed by their position, batch lines by their
// position or their "key"). An
// interrupt leaves a job's tasks running in the cluster; wasmpool job NAME
// --cancel stops them. Without --job, a command that dies leaves nothing to
// run: workers drop the tasks of a submitter that is gone. A job the
// cluster does not have exits 2.
//
// Errors are one line on stderr, "wasmpool: ...", naming the module.
package main

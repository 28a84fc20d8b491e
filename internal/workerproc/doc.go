// Package workerproc is the worker-process tier of a Subprocess pool: it
// starts worker processes (the program itself, or the wasmpool CLI),
// supervises them, talks to them, and replaces them when they die or have
// to be killed. Package pool keeps the queue, the futures, the lifecycle,
// Map and Stats, and drives this tier through a Slot per worker: Run takes
// a batch of jobs and reports each one's outcome.
//
// On the parent's side: a Supervisor, shared by a pool's workers, knows how
// to start a worker process and what to tell it (hello); a Slot owns one
// worker process at a time and runs batches of tasks on it (slot.go): it
// sends the modules the process lacks, then the batch in one frame, reads
// one result per task, stops a task whose context ends (asking first, then
// killing the process after the grace), and hands the tasks a dead process
// never started to the next one. A process that dies on its own fails the
// one task it ran with a CrashError; one this side stopped on purpose is no
// crash.
//
// On the worker process's side, Serve reads the frames, runs the tasks in
// order on a Runner (the one-worker pool package pool builds there), and
// writes the results back, as many at a time as are ready. The process
// sets its own rlimits before it runs guest code (sys_linux.go).
//
// The protocol is in protocol.go; tasks, results and errors use the codecs
// of package wire, shared with the cluster.
package workerproc

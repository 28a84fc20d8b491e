// Package cluster runs wasmpool tasks on workers spread over many hosts,
// behind the same futures API as the in-process pool: Submit, Map,
// future.AsCompleted, future.Wait, Shutdown. NATS JetStream is the engine
// underneath; there is no cluster protocol of our own.
//
// An Executor publishes each task to a JetStream work-queue stream and
// returns its future; a Worker (the `wasmpool worker --nats URL` command, or
// NewWorker inside any program) asks for tasks for its free slots, runs
// each on a local pool.Pool in either mode, heartbeats it while it runs,
// sends the result to the submitter, and only then acknowledges it.
//
// The message pattern is kept near JetStream's own cost. A worker keeps one
// inbox for its whole life and keeps a pull request there for each free
// slot, never more (a slot is free once its task is acknowledged). It knows the cancel records from a watch on their bucket,
// not a lookup per task, and says a task started only once it has run a
// millisecond. A result goes straight to its submitter as a core request,
// which the submitter answers on receipt: one stored message per task (the
// task), not two. The durable result stream stays for a result its
// submitter does not answer — disconnected, restarting, gone — where it
// waits ResultTTL, and what is left there for an executor that closes is
// purged. Modules and inputs too large for a message are stored off the
// publisher's way, so one big input or new module does not hold up the
// tasks submitted after it.
//
// Modules travel by content: the executor stores the wasm bytes in an
// object store under their sha256 (once), and each worker fetches a module
// the first time it needs it, checks the hash, and keeps it compiled.
// Inputs and outputs too large for one message go through a second store.
//
// A task's context deadline travels with it. Cancel (or the context ending)
// removes a queued task from the stream, stops it on the worker running it
// (a broadcast), and leaves a record kept CancelTTL, which every worker
// watches: one that missed the broadcast, or picks the task up at that very
// moment, stops it too.
//
// Failures: a worker that dies or goes silent with a task loses it to
// another worker after Settings.AckWait, 5s unless set (at-least-once
// delivery): live workers report progress on each running task every
// fifth of it, and a slot takes its next task only once the last one is
// acknowledged, so a dead worker holds one task per slot. A worker whose
// broker restarts asks again within a second or two. A task
// handed out more than its MaxDeliveries fails with ErrWorkerLost and is
// removed from the stream; AtMostOnce fails it as soon as a worker that
// began it is lost (one that died before beginning it does not count). A worker
// that stops on purpose (Shutdown, Close: a rolling restart) hands its
// tasks back without using up a delivery. Everything
// that happens to a task while it runs — a trap, a timeout, the memory
// limit, a bad module — is its result, returned as the pool returns it,
// never retried.
//
// Named jobs outlive their submitter (Config.Job, TaskOptions.Key): each
// task of a job has a record in the job bucket, which the worker running
// it writes (running, then done or failed with its result) instead of
// answering the submitter, and which the broker keeps for the job's
// retention. An executor opened with the same job name reads the records
// as it opens and watches them after: a key the job has finished settles
// its future from the kept result, one queued or running is waited for,
// and only keys the job lacks are sent; a worker drops a task whose record
// says it is finished or cancelled, so a kept result is never computed
// again. Jobs, Job, CancelJob and DeleteJob look at and act on jobs from
// outside (`wasmpool jobs`, `wasmpool job NAME`). The tasks of an
// anonymous executor share its fate instead: it keeps a liveness record
// (refreshed as worker adverts are, dropped by the broker's TTL), and a
// worker drops the queued tasks and stops the running ones of a submitter
// whose record is gone, and removes the results it left; a submitter that
// was only cut off, back, fails the tasks that were dropped with
// ErrUnavailable.
//
// Each worker advertises itself (WorkerInfo: its labels, the host
// capabilities it provides, whether it allows mounts, its memory limit, its
// counts) in a key-value bucket, written every AdvertEvery and dropped by
// the broker once the worker has been silent for the AckWait; Status reads
// those records and the task queue's counts (`wasmpool cluster status`).
//
// A task may require something of its worker (Requirements: labels,
// capabilities, mounts, memory; a task's grants and mounts are required
// without saying so), and then goes only to a worker that has it. Tasks
// with the same requirements share a queue of their own (a subject of a
// second work-queue stream, one durable consumer), recorded in a bucket
// that workers watch; each worker asks the queues it meets besides the
// common one, still with one request per free slot. Tasks that require
// nothing keep the common queue as it always was. A task that no live
// worker (by their records) can run waits Config.RouteWait for one to
// join, then fails with ErrNoWorker, naming what each live worker lacks.
//
// The server is not linked by this package: programs that only submit or
// only work import it alone. Package cluster/embedded runs a NATS server
// in-process, and a single-machine Node (server, executor and local
// workers) that is the default when there is no cluster to connect to.
//
//	nc, _ := cluster.Connect("nats://broker:4222", "my-app")
//	x, _ := cluster.New(ctx, nc, cluster.Config{})
//	defer x.Close()
//	f := x.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("hi")})
//	res, err := f.Result(ctx) // "HI", computed by some worker
package cluster

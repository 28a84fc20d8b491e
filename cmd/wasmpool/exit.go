package main

import (
	"errors"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
)

// Exit statuses: the one table every command uses. Keep doc.go and the root
// command's help (exitHelp) in step with it.
const (
	exitOK          = 0   // success
	exitFailed      = 1   // a task failed (the guest reported an error), or any other error
	exitUsage       = 2   // bad flag or argument, file not found, no such function
	exitBadModule   = 3   // not WebAssembly, or imports something the host does not provide
	exitNoWorker    = 69  // no live cluster worker has what the task requires (--route-wait), as sysexits' EX_UNAVAILABLE
	exitTrap        = 70  // the guest trapped
	exitMemoryLimit = 71  // the guest went over --memory
	exitOutputLimit = 72  // the guest went over --output-limit
	exitCrashed     = 73  // a worker process died under the task (--isolation subprocess)
	exitFuel        = 74  // the task used up its fuel (--fuel)
	exitUnavailable = 75  // the cluster's broker could not be reached (--unavailable-after), as sysexits' EX_TEMPFAIL
	exitCapability  = 78  // the task was refused: where it went lacks a capability it grants, as sysexits' EX_CONFIG
	exitTimeout     = 124 // the task timed out, as coreutils' timeout(1)
	exitCancelled   = 130 // interrupted (SIGINT/SIGTERM), as a shell reports it
)

const exitHelp = `Exit status:
  0    success
  1    a task failed (the guest reported an error), or any other error
  2    usage error: bad flag or argument, file not found, no such function
  3    bad module: not WebAssembly, or imports something the host does not provide
  69   no live cluster worker has what the task requires (a --require label,
       a capability it grants, mounts) for --route-wait
  70   the guest trapped
  71   the guest went over the memory limit (--memory)
  72   the guest went over the output limit (--output-limit)
  73   a worker process died under the task (--isolation subprocess)
  74   the task used up its fuel (--fuel)
  75   the NATS broker could not be reached for --unavailable-after (try again later)
  78   the task was refused: the worker that got it lacks a capability it grants
       (HTTP on a worker started without --allow-host)
  124  the task timed out (--timeout)
  130  interrupted (SIGINT/SIGTERM)
  run: a WASI command's own non-zero exit code is passed through (over 255: 1).
  map, batch: the status of the first failed input, in input order (with
  --fail-fast, of the failure that stopped the run); a command's non-zero
  exit counts as 1 there, a malformed batch line as 2.`

// exitCode maps an error to the exit status of the table above. A command's
// own exit code passes through; see failureStatus for map and batch. The
// class of a task's failure is taskerr.Kind's, the one classification the
// JSON results and the metrics use too: a status per kind, so that the
// three never disagree.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var (
		usage  *usageError
		bad    *badLineError
		status *exitStatus
		exit   *engine.ExitError
	)
	switch {
	case errors.As(err, &status):
		return status.code
	case errors.As(err, &usage), errors.As(err, &bad):
		return exitUsage
	}
	switch taskerr.Kind(err) {
	case kindCancelled:
		return exitCancelled
	case kindUnavail:
		return exitUnavailable
	case kindNoWorker:
		return exitNoWorker
	case kindCapability:
		return exitCapability
	case kindTimeout:
		return exitTimeout
	case kindFuel:
		return exitFuel
	case kindMemory:
		return exitMemoryLimit
	case kindOutput:
		return exitOutputLimit
	case kindCrash:
		return exitCrashed
	case kindTrap:
		return exitTrap
	case kindExit:
		errors.As(err, &exit)
		if exit.Code == 0 || exit.Code > 255 {
			return exitFailed
		}
		return int(exit.Code)
	case kindNoFunction, kindBadLine:
		// A bad mount or a missing module file: the path is wrong, not
		// the module's content.
		return exitUsage
	case kindBadModule:
		return exitBadModule
	}
	return exitFailed
}

// isMissingFile reports whether a module could not be read at all (missing,
// or not readable): then it is the path that is wrong.
func isMissingFile(err error) bool { return taskerr.IsMissingFile(err) }

// failureStatus is exitCode for one task among many (map, batch): there a
// guest's own exit code is only "the task failed".
func failureStatus(err error) int {
	var exit *engine.ExitError
	if errors.As(err, &exit) && exitCode(err) == int(exit.Code) {
		return exitFailed
	}
	return exitCode(err)
}

// Error kinds of the batch and map JSON lines (DESIGN.md, result line): the
// vocabulary package metrics labels failed tasks with too.
const (
	kindTrap       = taskerr.KindTrap
	kindTimeout    = taskerr.KindTimeout
	kindCancelled  = taskerr.KindCancelled
	kindMemory     = taskerr.KindMemory
	kindOutput     = taskerr.KindOutput
	kindExit       = taskerr.KindExit
	kindTask       = taskerr.KindTask
	kindBadModule  = taskerr.KindBadModule
	kindNoFunction = taskerr.KindNoFunction
	kindBadLine    = taskerr.KindBadLine
	kindCrash      = taskerr.KindCrash
	kindFuel       = taskerr.KindFuel
	kindUnavail    = taskerr.KindUnavailable
	kindCapability = taskerr.KindCapability
	kindNoWorker   = taskerr.KindNoWorker
)

// errorKind names the class of a task's failure for JSON output: a
// malformed line's, or what taskerr.Kind says of a task's.
func errorKind(err error) string {
	var bad *badLineError
	if errors.As(err, &bad) {
		return kindBadLine
	}
	return taskerr.Kind(err)
}

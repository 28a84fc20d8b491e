//go:build unix

package workerproc

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// childSysProcAttr puts a worker process in a process group of its own, so
// that a Ctrl-C at the terminal reaches only this process, which then stops
// its tasks in order, instead of killing the worker processes under it.
func childSysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(attr)
	return attr
}

// exitDescription says how a worker process ended: "exit status 2",
// "killed by signal SIGKILL". signaled is the signal's name, if any.
func exitDescription(state *os.ProcessState) (desc, signaled string, code int) {
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok {
		return state.String(), "", state.ExitCode()
	}
	switch {
	case ws.Signaled():
		name := unix.SignalName(ws.Signal())
		if name == "" {
			name = fmt.Sprintf("signal %d", int(ws.Signal()))
		}
		desc := "killed by signal " + name
		if ws.CoreDump() {
			desc += " (core dumped)"
		}
		return desc, name, -1
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus()), "", ws.ExitStatus()
	}
	return state.String(), "", state.ExitCode()
}

// cpuUsed is the CPU time (user and system) this process has used.
func cpuUsed() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// protocolOutput moves the protocol off file descriptor 1: it returns a
// private duplicate of stdout for the frames, and points descriptor 1 at
// stderr, so that a stray print (from an init function of the embedding
// program, say) lands among the diagnostics instead of corrupting a frame.
func protocolOutput() (*os.File, error) {
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("duplicating stdout: %w", err)
	}
	if err := redirectStdoutToStderr(); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pointing stdout at stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol"), nil
}

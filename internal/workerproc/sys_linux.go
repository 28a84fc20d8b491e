package workerproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// LimitsSupported says whether Limits are enforced on this platform.
const LimitsSupported = true

// setParentDeathSignal has the kernel kill a worker process the moment the
// thread that started it ends, so that none outlives this process, even
// when this process is killed without a chance to clean up. (The kernel
// watches the thread, not the process: the pool's spawner starts worker
// processes from a thread locked for the purpose, which lives as long as
// the pool.)
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

func redirectStdoutToStderr() error { return unix.Dup3(2, 1, 0) }

// setChildLimits applies the pool's rlimits to this (the worker) process.
// The address-space limit counts from what is mapped now: the Go runtime's
// up-front reservations, which no limit could undercut, are left out.
func setChildLimits(l Limits) (addressSpace, baseline uint64, cpuSeconds int64, err error) {
	if l.AddressSpace > 0 {
		baseline, err = mappedBytes()
		if err != nil {
			return 0, 0, 0, err
		}
		addressSpace = baseline + uint64(l.AddressSpace)*raceShadowFactor
		lim := unix.Rlimit{Cur: addressSpace, Max: addressSpace}
		if err := unix.Setrlimit(unix.RLIMIT_AS, &lim); err != nil {
			return 0, 0, 0, fmt.Errorf("setting the address-space limit (RLIMIT_AS): %w", err)
		}
	}
	if l.CPUSeconds > 0 {
		lim := unix.Rlimit{Cur: uint64(l.CPUSeconds), Max: uint64(l.CPUSeconds)}
		if err := unix.Setrlimit(unix.RLIMIT_CPU, &lim); err != nil {
			return 0, 0, 0, fmt.Errorf("setting the CPU time limit (RLIMIT_CPU): %w", err)
		}
		cpuSeconds = l.CPUSeconds
	}
	return addressSpace, baseline, cpuSeconds, nil
}

// mappedBytes is this process's virtual memory size (VmSize).
func mappedBytes() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("reading the process's memory size: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("reading the process's memory size: /proc/self/statm is empty")
	}
	pages, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the process's memory size: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}

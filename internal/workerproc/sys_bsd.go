//go:build unix && !linux

package workerproc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ProcessLimits are enforced on Linux only: RLIMIT_AS is not enforced by
// every kernel (macOS ignores it), and CI runs on Linux.
// LimitsSupported says whether Limits are enforced on this platform.
const LimitsSupported = false

func setParentDeathSignal(*syscall.SysProcAttr) {}

func redirectStdoutToStderr() error { return unix.Dup2(2, 1) }

func setChildLimits(Limits) (uint64, uint64, int64, error) { return 0, 0, 0, nil }

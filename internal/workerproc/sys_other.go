//go:build !unix

package workerproc

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// LimitsSupported says whether Limits are enforced on this platform.
const LimitsSupported = false

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func exitDescription(state *os.ProcessState) (string, string, int) {
	return fmt.Sprintf("exit status %d", state.ExitCode()), "", state.ExitCode()
}

func cpuUsed() time.Duration { return 0 }

// protocolOutput is stdout itself: this platform has no portable way to
// move it, so a stray print by the program corrupts the protocol (and the
// pool replaces the worker process, saying so).
func protocolOutput() (*os.File, error) { return os.Stdout, nil }

func setChildLimits(Limits) (uint64, uint64, int64, error) { return 0, 0, 0, nil }

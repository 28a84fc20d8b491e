package engine

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// Task is one unit of work: a function (or a WASI command) of a module, with
// everything the guest may see. The guest sees nothing else: no host
// environment variable, no file outside Mounts, no network.
type Task struct {
	Module  *Module
	Func    string            // exported function to call; "" runs the WASI command (_start)
	Input   []byte            // stdin for a command; the SDK input for an export
	Params  []uint64          // raw wasm arguments, for an export that does not use the SDK ABI
	Args    []string          // argv after the program name, for a command
	Env     map[string]string // the guest's whole environment; the host's is never inherited
	Mounts  []Mount           // the only host directories the guest can see; none by default
	Timeout time.Duration     // 0: only the context bounds it
	// Fuel is the task's budget of WebAssembly instructions; 0 means none.
	// It is counted the same on every machine and run: a task that needs F
	// succeeds with a budget of F and fails with ErrFuelExhausted below it.
	Fuel uint64
	// Grants names the capabilities (Config.Capabilities) the guest may
	// call; none by default. A grant the engine does not provide fails the
	// task with ErrNoCapability before it runs.
	Grants []string
	// GrantArgs configures a granted capability for this task, by name:
	// what its host functions read with GrantArgs(ctx), such as the hosts
	// an HTTP capability may reach.
	GrantArgs map[string][]string

	// Streams, for a command (Func == ""), for a caller that passes the
	// guest's stdio through as it happens, as a command line does: the
	// guest reads Stdin when it asks for input, instead of Input, and what it
	// writes goes to Stdout and Stderr at once, instead of into
	// Result.Output and Result.Stderr. OutputLimitBytes does not cap them:
	// it bounds what the host holds, and a stream holds nothing (only the
	// last 4 KiB of Stderr, for the ExitError). A read of Stdin that blocks
	// does not hold up a timeout or a cancel (the abandoned read completes
	// in the background when Stdin returns). An export ignores them.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Mount makes one host directory visible to the guest at GuestPath.
type Mount struct {
	HostPath, GuestPath string
	ReadOnly            bool
}

// Result is what a task produced.
type Result struct {
	Output   []byte        // the SDK output of an export, or the stdout of a command
	Stderr   []byte        // what the guest wrote to stderr (for an export, its stdout too)
	Values   []uint64      // raw results of a Params call
	ExitCode uint32        // a command's exit code (0 on success)
	Duration time.Duration // time spent inside the sandbox
	Wait     time.Duration // time spent queued before a worker took the task (set by a pool)
	Fuel     uint64        // the instructions the task ran, when it had a Fuel budget
	Worker   string        // the cluster worker that ran the task (set by cluster.Executor); "" here
}

// sameSandbox reports whether a and b would build identical instances: the
// same module, arguments, environment and mounts. A warm instance is only
// reused for a task it fits, so a task never sees another task's settings.
func sameSandbox(a, b *Task) bool {
	return a.Module == b.Module &&
		slices.Equal(a.Args, b.Args) &&
		maps.Equal(a.Env, b.Env) &&
		slices.Equal(a.Mounts, b.Mounts)
}

// fsConfig turns mounts into wazero's FS config. Host paths must be existing
// directories: a typo should fail the task with a clear message, not give the
// guest an empty directory.
func fsConfig(mounts []Mount) (wazero.FSConfig, error) {
	cfg := wazero.NewFSConfig()
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.HostPath == "" {
			return nil, fmt.Errorf("mount %q: the host path is empty", m.GuestPath)
		}
		host, err := filepath.Abs(m.HostPath)
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.HostPath, err)
		}
		info, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.HostPath, unwrapPathError(err))
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("mount %s: not a directory", m.HostPath)
		}
		guest := m.GuestPath
		if guest == "" {
			guest = "/"
		}
		guest = path.Clean("/" + guest)
		if seen[guest] {
			return nil, fmt.Errorf("mount %s: guest path %s is mounted twice", m.HostPath, guest)
		}
		seen[guest] = true
		// A mount is a rootFS (see rootfs.go), not wazero's DirFS, which
		// follows symlinks out of the directory.
		cfg = cfg.(sysfs.FSConfig).WithSysFSMount(newMountFS(host, m.ReadOnly), guest)
	}
	return cfg, nil
}

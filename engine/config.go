package engine

import (
	"github.com/tetratelabs/wazero"
)

const (
	defaultMemoryLimit = 256 << 20
	defaultOutputLimit = 16 << 20
	wasmPageSize       = 64 << 10
	// maxWasmPages is the most a 32-bit linear memory can address. The
	// runtime is configured with it so that wazero never refuses a grow on its
	// own: our allocator refuses instead, and so can tell the task that it hit
	// the memory limit (wazero's own refusal leaves no trace).
	maxWasmPages = 65536
)

// Config configures an Engine. The zero value is ready to use.
type Config struct {
	// MemoryLimitBytes caps each instance's linear memory. 0 means 256 MiB.
	// It is rounded up to whole 64 KiB pages.
	MemoryLimitBytes uint64
	// OutputLimitBytes caps a task's output and, separately, its stderr,
	// as the host collects them into the Result. 0 means 16 MiB. Output
	// streamed through Task.Stdout and Task.Stderr is not collected, and
	// not capped.
	OutputLimitBytes int
	// CacheDir holds compiled code on disk, shared by every process that
	// points at it. "" keeps compiled code in memory only.
	CacheDir string
	// Interpreter selects wazero's interpreter instead of its compiler:
	// slower code, no native code generation.
	Interpreter bool
	// NoInterrupt runs guest code without the checks that let a timeout, a
	// cancel or Close stop it in the middle of a call: raw speed (the checks
	// cost a few per cent), but a running guest is then stopped only between
	// calls or in a host function that watches its context, and holds its
	// goroutine's P until it returns (no timer on that P, no garbage
	// collection anywhere, until then). For code you trust to return.
	// Tasks with a Fuel budget are metered, and so stoppable, all the same.
	NoInterrupt bool
	// HostModules are capabilities granted to guests: host functions that a
	// plugin may import. A module importing anything not granted here (nor
	// WASI, nor the wasmpool ABI) is refused at compile time with ErrBadModule.
	HostModules []HostModule
	// Capabilities are host functions over bytes that guests call by name
	// through the wasmpool ABI (guest.Call), each task only those its
	// Task.Grants name. See Capability.
	Capabilities []Capability
	// Preinitialize runs a reactor's _initialize once per module (and
	// sandbox: arguments, environment, mounts) and starts every later
	// instance from a copy of the memory and globals it left, instead of
	// running _initialize again: the technique of Wizer. A fresh instance of
	// a Go guest then costs a memory copy rather than the Go runtime's
	// start-up. Instances share nothing with each other all the same (the
	// template is taken before any task runs), but they all share what that
	// one initialisation read: the clock, and the random bytes a runtime
	// seeds itself with (Go's map hashing and math/rand's global source).
	// Modules it cannot apply to exactly (commands, modules whose code can
	// change a table or a passive segment) are instantiated as usual.
	Preinitialize bool
	// Deterministic, when set, gives every instance a fixed wall clock and a
	// seeded random source, so that a task can be replayed bit for bit. By
	// default guests see the real clocks and a cryptographic random source.
	Deterministic *Determinism

	// MaxModules bounds how many compiled modules the engine keeps: past
	// it, the least recently used is evicted, its compiled code released
	// once no instance of it is left. An evicted *Module stays valid: the
	// next task of it compiles it again (a cache miss, not an error).
	// 0 means DefaultMaxModules; negative is an error.
	MaxModules int
	// MaxModuleBytes bounds the bytes the kept modules hold, evicting the
	// least recently used past it (keeping one at least). What counts is
	// each module's bytes, its rewritten and instrumented forms (the native
	// code wazero makes of them is of the same order) and its memory
	// templates (Preinitialize), which are usually most of it. 0 means no
	// bound on bytes, only MaxModules; negative is an error.
	MaxModuleBytes int64
}

// DefaultMaxModules is Config.MaxModules when it is 0. A long-lived process
// is then bounded without being configured: a minimal module costs some
// 16 KiB kept (its compiled code mostly), 35 KiB with a warm instance in a
// Threads pool (pool's TestSoakManyModules), so 1024 of them are 16 to
// 35 MiB, while a real plugin set is tens to hundreds of modules, which
// this never evicts. A process sent many large or pre-initialised modules
// (a multi-tenant host) should set MaxModuleBytes too.
const DefaultMaxModules = 1024

// Determinism fixes what is otherwise the only non-reproducible input to a
// guest: time and randomness.
type Determinism struct {
	WalltimeUnixNano int64 // the wall clock every instance reads (it does not advance)
	Seed             int64 // seeds the random source of every instance
}

// HostModule is a capability the embedder grants to guests: a host module of
// the given Name whose functions Define adds to the builder. Define is called
// once per wazero runtime the engine creates (a process-like pool has one per
// worker), so it must be safe to call more than once and should not hold
// per-runtime state.
//
//	engine.HostModule{Name: "kv", Define: func(b wazero.HostModuleBuilder) {
//		b.NewFunctionBuilder().WithFunc(func(ctx context.Context, key uint32) uint32 { ... }).Export("get")
//	}}
type HostModule struct {
	Name   string
	Define func(b wazero.HostModuleBuilder)
}

func (c Config) memoryLimit() uint64 {
	limit := c.MemoryLimitBytes
	if limit == 0 {
		limit = defaultMemoryLimit
	}
	// Round up to whole pages: a guest can only grow by pages.
	limit = (limit + wasmPageSize - 1) / wasmPageSize * wasmPageSize
	if limit > maxWasmPages*wasmPageSize {
		limit = maxWasmPages * wasmPageSize
	}
	return limit
}

func (c Config) maxModules() int {
	if c.MaxModules == 0 {
		return DefaultMaxModules
	}
	return c.MaxModules
}

func (c Config) outputLimit() int {
	if c.OutputLimitBytes <= 0 {
		return defaultOutputLimit
	}
	return c.OutputLimitBytes
}

package workerproc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// Config is what a Supervisor starts its worker processes with.
type Config struct {
	// Argv is the command line of a worker process.
	Argv []string
	// Engine is the configuration of the engine each worker process builds
	// (its HostModules by name: the worker process grants its own).
	Engine engine.Config
	// Pool configures the one-worker pool inside each worker process.
	Pool PoolConfig
	// Limits are what each worker process sets on itself.
	Limits Limits
	// KillGrace is how long a worker process has to stop a task on its own
	// before it is killed.
	KillGrace time.Duration
	// OutputLimit is the engine's cap on a task's output and its stderr,
	// each: the largest result a worker process may send follows from it.
	OutputLimit int
	// Counters are where the worker processes' statistics are added up.
	Counters Counters
}

// Counters are the statistics of a Supervisor's worker processes, added to
// the pool's own counters.
type Counters struct {
	// InstancesBuilt and InstanceRestarts are the sums of the counters of
	// the pools inside the worker processes.
	InstancesBuilt, InstanceRestarts *atomic.Int64
	// Crashes counts worker processes that died on their own; Restarts
	// those started to replace one that died, was killed or was retired.
	Crashes, Restarts *atomic.Int64
}

// Supervisor is what the workers of a Subprocess pool share: how to start a
// worker process and what to tell it, and the record of those alive.
type Supervisor struct {
	argv       []string
	hello      []byte // the encoded helloMsg every child gets
	initModule *engine.Module
	maxPayload int
	grace      time.Duration
	maxModules int // a child holding more is replaced (see Slot.Run)
	counters   Counters
	spawner    *spawner
	// tempCache is a compiled-code cache made for the children when the
	// engine has none, so that a replaced child does not compile afresh.
	tempCache string

	mu       sync.Mutex
	children map[int]*child // alive, by PID
}

// exitGrace is how long an idle worker process has to exit when asked (its
// stdin closed) before it is killed: it has nothing to finish.
const exitGrace = time.Second

// initModuleID is the id of Init's own module in every child: tasks' modules
// are numbered after it.
const initModuleID = 1

// NewSupervisor prepares to start worker processes as cfg says; it starts
// none yet (NewSlot does).
func NewSupervisor(cfg Config) (*Supervisor, error) {
	sv := &Supervisor{argv: cfg.Argv, grace: cfg.KillGrace, children: map[int]*child{},
		maxPayload: maxResultPayload(cfg.OutputLimit), counters: cfg.Counters}
	ecfg := cfg.Engine
	sv.maxModules = ecfg.MaxModules
	if sv.maxModules <= 0 {
		sv.maxModules = engine.DefaultMaxModules
	}
	if ecfg.CacheDir == "" {
		var err error
		if sv.tempCache, err = os.MkdirTemp("", "wasmpool-workers-"); err != nil {
			return nil, fmt.Errorf("a compiled-code cache for the worker processes: %w", err)
		}
		ecfg.CacheDir = sv.tempCache
	}
	h := helloMsg{engine: ecfg, pool: cfg.Pool, limits: cfg.Limits}
	if init := cfg.Pool.Init; init != nil {
		it := *init
		if init.Module != nil {
			sv.initModule = init.Module
			h.initModule = &moduleMsg{id: initModuleID, name: init.Module.Name(), digest: init.Module.Digest(), m: init.Module}
		}
		it.Module = nil
		h.pool.Init = &it
	}
	var enc wire.Encoder
	h.encode(&enc)
	sv.hello = enc.Bytes()
	sv.spawner = newSpawner()
	return sv, nil
}

func (sv *Supervisor) spawn(cmd *exec.Cmd) error { return sv.spawner.start(cmd) }

// track records a child as alive, or as gone.
func (sv *Supervisor) track(c *child, alive bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if alive {
		sv.children[c.pid] = c
	} else {
		delete(sv.children, c.pid)
	}
}

// PIDs returns the process IDs of the live worker processes, sorted.
func (sv *Supervisor) PIDs() []int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	pids := make([]int, 0, len(sv.children))
	for pid := range sv.children {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// StopAll stops every child still alive, once Shutdown or Close has seen
// the workers out. A worker that was running a future's callbacks is not
// waited for (the callback may be the one calling Close), and it stops its
// child only after them: this makes sure no child outlives Close or
// Shutdown all the same. Safe on a nil Supervisor (an InProcess pool).
func (sv *Supervisor) StopAll() {
	if sv == nil {
		return
	}
	sv.mu.Lock()
	children := make([]*child, 0, len(sv.children))
	for _, c := range sv.children {
		children = append(children, c)
	}
	sv.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(exitGrace)
		}()
	}
	wg.Wait()
}

// Close releases what the workers shared, once every child is gone.
func (sv *Supervisor) Close() {
	sv.spawner.close()
	if sv.tempCache != "" {
		_ = os.RemoveAll(sv.tempCache)
	}
}

// spawner starts worker processes from one OS thread that stays locked for
// the pool's life: the kernel's parent-death signal watches the thread that
// forked, and Go ends a thread only when a goroutine locked to it exits.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer close(s.done)
		// Unlocked on the way out, the thread goes back to the runtime
		// instead of ending; every worker process it started is gone by
		// then.
		defer runtime.UnlockOSThread()
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	return <-reply
}

func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

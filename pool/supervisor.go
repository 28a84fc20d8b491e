package pool

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// supervisor is what a Subprocess pool's workers share: how to start a
// worker process and what to tell it, and the record of those alive.
type supervisor struct {
	p          *Pool
	argv       []string
	hello      []byte // the encoded helloMsg every child gets
	initModule *engine.Module
	maxPayload int
	grace      time.Duration
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

func newSupervisor(p *Pool) (*supervisor, error) {
	argv, err := p.cfg.workerCommand()
	if err != nil {
		return nil, err
	}
	sv := &supervisor{p: p, argv: argv, grace: p.cfg.KillGrace, children: map[int]*child{},
		maxPayload: maxResultPayload(p.e.OutputLimit())}
	ecfg := p.e.Config()
	if ecfg.CacheDir == "" {
		if sv.tempCache, err = os.MkdirTemp("", "wasmpool-workers-"); err != nil {
			return nil, fmt.Errorf("pool: a compiled-code cache for the worker processes: %w", err)
		}
		ecfg.CacheDir = sv.tempCache
	}
	h := helloMsg{engine: ecfg, mode: p.cfg.Mode, maxTasks: p.cfg.MaxTasksPerWorker,
		idleTimeout: p.cfg.IdleTimeout, limits: p.cfg.childLimits(p.e.MemoryLimit())}
	if init := p.cfg.Init; init != nil {
		h.init = &taskMsg{task: *init}
		if init.Module != nil {
			sv.initModule = init.Module
			h.init.moduleID = initModuleID
			h.initModule = &moduleMsg{id: initModuleID, name: init.Module.Name(), digest: init.Module.Digest(), m: init.Module}
		}
		h.init.task.Module = nil
	}
	var enc wire.Encoder
	h.encode(&enc)
	sv.hello = enc.Bytes()
	sv.spawner = newSpawner()
	return sv, nil
}

func (sv *supervisor) spawn(cmd *exec.Cmd) error { return sv.spawner.start(cmd) }

// track records a child as alive, or as gone.
func (sv *supervisor) track(c *child, alive bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if alive {
		sv.children[c.pid] = c
	} else {
		delete(sv.children, c.pid)
	}
}

func (sv *supervisor) livePIDs() []int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	pids := make([]int, 0, len(sv.children))
	for pid := range sv.children {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// stopAll stops every child still alive, once Shutdown or Close has seen
// the workers out. A worker that was running a future's callbacks is not
// waited for (the callback may be the one calling Close), and it stops its
// child only after them: this makes sure no child outlives Close or
// Shutdown all the same. Safe on a nil supervisor (an InProcess pool).
func (sv *supervisor) stopAll() {
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

// close releases what the workers shared, once every child is gone.
func (sv *supervisor) close() {
	sv.spawner.close()
	if sv.tempCache != "" {
		_ = os.RemoveAll(sv.tempCache)
	}
}

// WorkerPIDs returns the process IDs of the pool's live worker processes
// (Subprocess isolation), sorted; nil for an InProcess pool.
func (p *Pool) WorkerPIDs() []int {
	if p.procs == nil {
		return nil
	}
	return p.procs.livePIDs()
}

// Isolation is the pool's isolation.
func (p *Pool) Isolation() Isolation { return p.cfg.Isolation }

// startProcWorkers starts a Subprocess pool's workers, each with its worker
// process ready: a program that cannot serve as one fails New, not every
// task.
func (p *Pool) startProcWorkers() error {
	sv, err := newSupervisor(p)
	if err != nil {
		return err
	}
	pws := make([]*procWorker, p.cfg.Workers)
	errs := make([]error, len(pws))
	var wg sync.WaitGroup
	for i := range pws {
		pw := &procWorker{worker: &worker{p: p, id: i}, sv: sv}
		pws[i] = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pw.startChild()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, pw := range pws {
			if pw.c != nil {
				pw.c.stop(exitGrace)
			}
		}
		sv.close()
		return fmt.Errorf("pool: %w", err)
	}
	p.procs = sv
	for _, pw := range pws {
		p.workers = append(p.workers, pw.worker)
	}
	p.life.live = len(pws)
	for _, pw := range pws {
		go pw.loop()
	}
	return nil
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

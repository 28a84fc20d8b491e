package cluster

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// moduleCache is what a worker keeps of the modules its tasks name, by
// digest: the compiled module, or the failure to fetch or compile it. A
// worker runs for weeks and is sent any number of distinct modules, so the
// cache holds at most max modules, the least recently used going first
// (closed: see releaseModule), and a failure only for failureTTL (a module
// put right in the store, or a worker given the host module it lacked, is
// then tried again). A module a task holds (get to its release) is not
// evicted: closed under a task queued in the pool, it would fail the task.
type moduleCache struct {
	max        int
	failureTTL time.Duration
	now        func() time.Time

	mu    sync.Mutex
	calls map[string]*list.Element // of *moduleCall
	lru   list.List                // most recently used first
}

// moduleCall is a module being fetched and compiled, shared by the tasks
// that need it meanwhile, then its outcome.
type moduleCall struct {
	digest string
	done   chan struct{}
	m      *engine.Module
	err    error
	failed time.Time // when err was known
	users  int       // tasks holding m, under moduleCache.mu
}

func newModuleCache(maxModules int, failureTTL time.Duration) *moduleCache {
	return &moduleCache{max: maxModules, failureTTL: failureTTL, now: time.Now, calls: map[string]*list.Element{}}
}

// get returns the module of digest, calling load the first time (and again
// once a failure has expired), and holds it until release is called (a
// no-op after an error). A failure that is the broker's, or the task's
// context ending, is not kept: the next task tries again.
func (mc *moduleCache) get(ctx context.Context, digest string, load func(context.Context) (*engine.Module, error)) (_ *engine.Module, release func(), _ error) {
	mc.mu.Lock()
	var c *moduleCall
	if el, ok := mc.calls[digest]; ok {
		c = el.Value.(*moduleCall)
		if c.err != nil && mc.now().Sub(c.failed) >= mc.failureTTL {
			mc.remove(el)
			c = nil
		} else {
			mc.lru.MoveToFront(el)
		}
	}
	owner := c == nil
	if owner {
		c = &moduleCall{digest: digest, done: make(chan struct{})}
		mc.calls[digest] = mc.lru.PushFront(c)
		mc.evict()
	}
	c.users++ // a failure's too: its count is never looked at
	mc.mu.Unlock()
	if owner {
		m, err := load(ctx)
		mc.mu.Lock()
		c.m, c.err = m, err
		if c.err != nil {
			c.failed = mc.now()
			if errors.As(c.err, new(transient)) || ctx.Err() != nil {
				if el, ok := mc.calls[digest]; ok && el.Value == c {
					mc.remove(el)
				}
			}
		}
		mc.mu.Unlock()
		close(c.done)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			mc.mu.Lock()
			defer mc.mu.Unlock()
			if c.users--; c.users == 0 {
				mc.evict() // what this task's hold kept past max
			}
		})
	}
	select {
	case <-c.done:
		if c.err != nil {
			release()
			return nil, func() {}, c.err
		}
		return c.m, release, nil
	case <-ctx.Done():
		release()
		return nil, func() {}, transient{ctx.Err()}
	}
}

// evict drops the least recently used modules past max, under mu. A module
// still being loaded, or held by a task, stays.
func (mc *moduleCache) evict() {
	for el := mc.lru.Back(); el != nil && mc.lru.Len() > mc.max; {
		prev := el.Prev()
		c := el.Value.(*moduleCall)
		select {
		case <-c.done:
			if c.users == 0 || c.err != nil {
				mc.remove(el)
			}
		default:
		}
		el = prev
	}
}

func (mc *moduleCache) remove(el *list.Element) {
	c := el.Value.(*moduleCall)
	mc.lru.Remove(el)
	delete(mc.calls, c.digest)
	if c.m != nil {
		releaseModule(c.m)
	}
}

// releaseModule gives the engine back what it keeps of a module the worker
// no longer holds: Module.Close undoes the worker's Compile of it (another
// holder of the same bytes in this engine, an embedded node's submitter,
// keeps its own), and the code goes once the pool's instances of it do.
func releaseModule(m *engine.Module) {
	_ = m.Close(context.Background())
}

func (mc *moduleCache) len() int {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.lru.Len()
}

// close drops every module.
func (mc *moduleCache) close() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	for el := mc.lru.Front(); el != nil; {
		next := el.Next()
		select {
		case <-el.Value.(*moduleCall).done:
			mc.remove(el)
		default:
		}
		el = next
	}
}

package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// Module uploads, off the publisher's goroutine: the first task of a module
// the store may lack starts its upload, every task of that module
// submitted meanwhile waits for the same one (and is published after it,
// in submission order), and tasks of modules already stored go ahead.

// testHookUpload is called as a module's upload begins: the test of an
// upload that takes long holds it there.
var testHookUpload = func() {}

// moduleUploads is the executor's record of its module uploads: those done
// lately (uploads) and those under way.
type moduleUploads struct {
	mu     sync.Mutex
	done   *uploads
	flying map[string]*upload
}

// upload is one module's upload under way, and what waits for it.
type upload struct {
	waiters []func(error)
}

// after runs then once m is in the store, or with the error that kept it
// out, and reports true; or reports false, running nothing, when the store
// has a copy young enough. The waiters of one upload run in the order
// they came, on the upload's goroutine.
func (mu *moduleUploads) after(x *Executor, m *engine.Module, deadline time.Time, then func(error)) bool {
	digest := m.Digest()
	mu.mu.Lock()
	defer mu.mu.Unlock()
	if mu.done == nil {
		mu.done, mu.flying = newUploads(x.top.moduleTTL), map[string]*upload{}
	}
	if mu.done.fresh(digest, time.Now()) {
		return false
	}
	if up := mu.flying[digest]; up != nil {
		up.waiters = append(up.waiters, then)
		return true
	}
	up := &upload{waiters: []func(error){then}}
	mu.flying[digest] = up
	x.bg.Go(func() {
		testHookUpload()
		ctx, cancel := x.opContext(deadline)
		defer cancel()
		err := retry(ctx, func(ctx context.Context) error {
			if err := x.whileConnected(); err != nil {
				return err
			}
			return x.uploadModule(ctx, m)
		})
		mu.mu.Lock()
		delete(mu.flying, digest)
		if err == nil {
			mu.done.stored(digest, time.Now())
		}
		waiters := up.waiters
		mu.mu.Unlock()
		// A failed upload fails the tasks waiting for it; the next task
		// of the module tries again.
		for _, w := range waiters {
			w(err)
		}
	})
	return true
}

// uploads remembers the modules this executor stored lately, so that it
// asks the store about a module once in a while, not for every task. It
// forgets a module once the store's copy may be half its TTL old (the store
// then gets it again), and forgets all when it has grown past maxUploads
// distinct modules: an executor sent new modules for months stays bounded.
type uploads struct {
	ttl time.Duration
	at  map[string]time.Time
}

const maxUploads = 4096

func newUploads(ttl time.Duration) *uploads { return &uploads{ttl: ttl, at: map[string]time.Time{}} }

func (u *uploads) fresh(digest string, now time.Time) bool {
	at, ok := u.at[digest]
	return ok && !stale(at, u.ttl, now)
}

func (u *uploads) stored(digest string, now time.Time) {
	if len(u.at) >= maxUploads {
		clear(u.at)
	}
	u.at[digest] = now
}

// stale reports whether a module stored at t must be stored again: it is
// older than half the store's TTL (0: none).
func stale(t time.Time, ttl time.Duration, now time.Time) bool {
	return ttl > 0 && now.Sub(t) >= ttl/2
}

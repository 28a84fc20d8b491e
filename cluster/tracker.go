package cluster

import (
	"context"
	"sync"
)

// tracker counts goroutines doing background work, so that teardown can
// wait for them. Unlike a WaitGroup it may gain work while being waited on:
// a task ending late starts its cancellation then.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

func (t *tracker) Go(f func()) {
	t.mu.Lock()
	t.n++
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	t.mu.Unlock()
	go func() {
		defer func() {
			t.mu.Lock()
			t.n--
			if t.n == 0 {
				close(t.idle)
				t.idle = nil
			}
			t.mu.Unlock()
		}()
		f()
	}()
}

func (t *tracker) wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		idle := t.idle
		t.mu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

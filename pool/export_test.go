package pool

import "github.com/wasmpool/wasmpool/internal/workerproc"

// ChildProtocolWrite writes b as it is on this worker process's protocol
// stream: a test host function uses it to make its worker process break
// the protocol in the middle of a task.
func ChildProtocolWrite(b []byte) error { return workerproc.ProtocolWrite(b) }

// ForgetServeChild makes the pool behave as in a program whose main does not
// call ServeChild, until restore is called.
func ForgetServeChild() (restore func()) {
	was := canServeChild.Swap(false)
	return func() { canServeChild.Store(was) }
}

// ContextWatches is how many queued-context watches the pool keeps.
func (p *Pool) ContextWatches() int {
	p.watches.mu.Lock()
	defer p.watches.mu.Unlock()
	return len(p.watches.byCh)
}

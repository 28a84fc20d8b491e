package pool

import "errors"

// ChildProtocolWrite writes b as it is on this worker process's protocol
// stream: a test host function uses it to make its worker process break
// the protocol in the middle of a task.
func ChildProtocolWrite(b []byte) error {
	s := serving.Load()
	if s == nil {
		return errors.New("not a worker process")
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, err := s.raw.Write(b)
	return err
}

// ForgetServeChild makes the pool behave as in a program whose main does not
// call ServeChild, until restore is called.
func ForgetServeChild() (restore func()) {
	was := canServeChild.Swap(false)
	return func() { canServeChild.Store(was) }
}

package cluster

// HoldPublisher makes the executor's publisher stop at each task it takes,
// telling entered, until release is closed: a test's broker that does not
// answer.
func HoldPublisher(entered chan<- struct{}, release <-chan struct{}) (restore func()) {
	was := testHookPublish
	testHookPublish = func() {
		entered <- struct{}{}
		<-release
	}
	return func() { testHookPublish = was }
}

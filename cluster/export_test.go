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

// RefuseAnswers makes the executor stop answering results sent straight to
// it, as if it were disconnected: workers must store them in the result
// stream instead.
func RefuseAnswers(x *Executor) error { return x.answers.Unsubscribe() }

// HoldLargeInputs makes the executor stop before storing each large input,
// telling entered, until release is closed: an input that takes long to
// store.
func HoldLargeInputs(entered chan<- struct{}, release <-chan struct{}) (restore func()) {
	was := testHookLargeInput
	testHookLargeInput = func() {
		entered <- struct{}{}
		<-release
	}
	return func() { testHookLargeInput = was }
}

// HoldUploads makes the executor stop before each module upload, telling
// entered, until release is closed.
func HoldUploads(entered chan<- struct{}, release <-chan struct{}) (restore func()) {
	was := testHookUpload
	testHookUpload = func() {
		entered <- struct{}{}
		<-release
	}
	return func() { testHookUpload = was }
}

// SilenceLiveness stops the executor's refreshes of its liveness record,
// as if it were cut off from the broker, until the returned function is
// called.
func SilenceLiveness(x *Executor) (resume func()) {
	x.live.paused.Store(true)
	return func() { x.live.paused.Store(false) }
}

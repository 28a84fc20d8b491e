package embedded_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A node's Close must stop every goroutine it started: the server's, the
// connections', the executor's and the workers'.
func TestMain(m *testing.M) {
	// See cluster's TestMain: a nats.go goroutine that may miss the
	// connection's CLOSED event.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

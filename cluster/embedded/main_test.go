package embedded_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A node's Close must stop every goroutine it started: the server's, the
// connections', the executor's and the workers'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

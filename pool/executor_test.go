package pool_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// MapWindow is driven here by a submit function that completes futures in
// reverse order of submission, as a remote executor might: the results must
// still come in input order, with never more than the window outstanding.
func TestMapWindowOrderAndBound(t *testing.T) {
	const window, total = 3, 10
	var outstanding []*future.Promise[engine.Result]
	maxOut := 0
	submit := func(ctx context.Context, task engine.Task) *future.Future[engine.Result] {
		f, p := future.New[engine.Result]()
		p.Start()
		outstanding = append(outstanding, p)
		maxOut = max(maxOut, len(outstanding))
		// Once the window is full, finish everything outstanding, newest
		// first: the oldest future, the one Map waits on, finishes last.
		if len(outstanding) == window || string(task.Input) == strconv.Itoa(total-1) {
			for i := len(outstanding) - 1; i >= 0; i-- {
				in := outstanding[i]
				in.Resolve(engine.Result{Output: []byte("r" + strconv.Itoa(i))}, nil)
			}
			outstanding = nil
		}
		return f
	}
	tasks := func(yield func(engine.Task) bool) {
		for i := range total {
			if !yield(engine.Task{Input: []byte(strconv.Itoa(i))}) {
				return
			}
		}
	}
	var got []string
	for res, err := range pool.MapWindow(within(t), submit, window, tasks) {
		require.NoError(t, err)
		got = append(got, string(res.Output))
	}
	assert.Equal(t, []string{"r0", "r1", "r2", "r0", "r1", "r2", "r0", "r1", "r2", "r0"}, got)
	assert.Equal(t, window, maxOut, "never more than the window submitted ahead")
}

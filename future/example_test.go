package future_test

import (
	"context"
	"fmt"

	"github.com/wasmpool/wasmpool/future"
)

func Example() {
	ctx := context.Background()
	var fs []*future.Future[int]
	for i := 1; i <= 3; i++ {
		f, p := future.New[int]()
		go func() {
			if p.Start() { // false if the future was cancelled first
				p.Resolve(i*i, nil)
			}
		}()
		fs = append(fs, f)
	}
	sum := 0
	for f, err := range future.AsCompleted(ctx, fs...) {
		if err != nil {
			panic(err) // ctx ended before every future completed
		}
		v, _ := f.Result(ctx)
		sum += v
	}
	fmt.Println(sum)
	// Output: 14
}

func ExampleFuture_Cancel() {
	f, p := future.New[string]()
	f.OnDone(func(f *future.Future[string]) { fmt.Println("done:", f.State()) })
	fmt.Println(f.Cancel())
	fmt.Println(p.Start()) // the producer learns not to begin
	_, err := f.Result(context.Background())
	fmt.Println(err)
	// Output:
	// done: cancelled
	// true
	// false
	// future cancelled
}

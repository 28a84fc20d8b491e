package engine_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// A capability is host functions over bytes: the guest calls
// guest.Call("strings", "upper", in), and the host never sees a pointer. A
// task may call it only if it grants it; one that does not is told so, as
// an error it can handle (here the guest's "handled" export prints it).
func ExampleCapability() {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{Capabilities: []engine.Capability{{
		Name: "strings",
		Funcs: map[string]engine.HostFunc{
			"upper": func(_ context.Context, in []byte) ([]byte, error) { return []byte(strings.ToUpper(string(in))), nil },
		},
	}}, CacheDir: testmod.CompileCache()}) // the compiled code tests share: seconds under -race
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx)
	path, err := testmod.Build("caps")
	if err != nil {
		panic(err)
	}
	m, err := e.CompileFile(ctx, path)
	if err != nil {
		panic(err)
	}
	for _, grants := range [][]string{{"strings"}, nil} {
		res, err := e.Run(ctx, engine.Task{Module: m, Func: "handled", Input: []byte("strings\nupper\nhello"), Grants: grants})
		if err != nil {
			panic(err)
		}
		fmt.Println(string(res.Output))
	}
	// Output:
	// ok: HELLO
	// error: capability "strings" is not granted to this task (granted: none) (not granted: true, no func: false)
}

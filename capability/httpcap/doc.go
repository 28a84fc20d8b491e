// Package httpcap is the built-in HTTP capability: it lets a guest, which
// has no sockets, make HTTP requests through the host (guest.HTTP in the Go
// SDK), to the hosts its task is allowed and nowhere else.
//
// Register it on the engine, and grant it per task with the hosts that task
// may reach:
//
//	e, _ := engine.New(ctx, engine.Config{Capabilities: []engine.Capability{httpcap.New(httpcap.Policy{})}})
//	res, err := e.Run(ctx, engine.Task{Module: m, Func: "fetch", Input: []byte(url),
//		Grants:    []string{httpcap.Name},
//		GrantArgs: map[string][]string{httpcap.Name: {"api.example.com", "*.cdn.example.com"}}})
//
// It is net/http underneath, with the task's context: a request ends when
// its task is stopped. The Policy bounds every request: the hosts (the
// embedder's list and the task's must both allow one), what a name may
// resolve to (no loopback or private address unless a pattern names that
// very address, or Policy.AllowPrivate: checked on the address connected
// to, so a redirect or a DNS answer cannot get around it), the methods, the
// request and response sizes and a timeout per request. What it refuses,
// the guest gets as an error value (guest.CallError) whose text says why.
//
// The wire format between guest and host is the header's length (4 bytes,
// little-endian), a JSON header (Request, Response) and the body: simple to
// write in any guest language.
package httpcap

package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// Config configures a single-machine node: a server, an executor and local
// workers.
type Config struct {
	Server ServerConfig
	// Executor configures the node's executor. Its Settings are the whole
	// cluster's; with no Server.StoreDir they are kept in memory.
	Executor cluster.Config
	// Worker configures the local worker; its Settings are ignored (the
	// executor's apply). Worker.Pool sets the mode and the number of slots.
	Worker cluster.WorkerConfig
	// NoLocalWorkers runs no worker here: only workers that connect from
	// other hosts (Server.Listen) run the tasks.
	NoLocalWorkers bool
}

// Node is the single-machine default of a cluster: a NATS server inside
// this process, an executor and local workers, connected to it in-process.
// It runs tasks the same way a cluster of many hosts does, and with
// Server.Listen set, workers on other hosts can join it. A Node is a
// pool.Executor; its Shutdown and Close also stop its workers and server.
type Node struct {
	*cluster.Executor
	Server *Server
	Worker *cluster.Worker // nil with NoLocalWorkers

	conns []*nats.Conn
}

var _ pool.Executor = (*Node)(nil)

// Start starts a node whose local workers run tasks on e.
func Start(ctx context.Context, e *engine.Engine, cfg Config) (*Node, error) {
	if cfg.Server.StoreDir == "" {
		cfg.Executor.Memory = true
	}
	srv, err := StartServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	n := &Node{Server: srv}
	fail := func(err error) (*Node, error) {
		n.stopRest()
		return nil, err
	}
	if !cfg.NoLocalWorkers {
		nc, err := n.connect("wasmpool local worker")
		if err != nil {
			return fail(err)
		}
		wcfg := cfg.Worker
		wcfg.Settings = cfg.Executor.Settings
		if n.Worker, err = cluster.NewWorker(ctx, nc, e, wcfg); err != nil {
			return fail(err)
		}
	}
	nc, err := n.connect("wasmpool executor")
	if err != nil {
		return fail(err)
	}
	if n.Executor, err = cluster.New(ctx, nc, cfg.Executor); err != nil {
		return fail(err)
	}
	return n, nil
}

func (n *Node) connect(name string) (*nats.Conn, error) {
	nc, err := n.Server.Connect(name)
	if err != nil {
		return nil, err
	}
	n.conns = append(n.conns, nc)
	return nc, nil
}

// Shutdown waits for the submitted tasks to finish (see
// cluster.Executor.Shutdown), then stops the workers and the server.
func (n *Node) Shutdown(ctx context.Context) error {
	err := n.Executor.Shutdown(ctx)
	if n.Worker != nil {
		err = errors.Join(err, n.Worker.Shutdown(ctx))
	}
	n.stopRest()
	return err
}

// Close stops everything at once, cancelling unfinished tasks.
func (n *Node) Close() error {
	err := n.Executor.Close()
	n.stopRest()
	return err
}

func (n *Node) stopRest() {
	if n.Worker != nil {
		_ = n.Worker.Close()
	}
	for _, nc := range n.conns {
		nc.Close()
	}
	n.conns = nil
	n.Server.Shutdown()
}

// String describes the node for logs.
func (n *Node) String() string {
	if u := n.Server.ClientURL(); u != "" {
		return fmt.Sprintf("embedded NATS node at %s", u)
	}
	return "embedded NATS node (in-process)"
}

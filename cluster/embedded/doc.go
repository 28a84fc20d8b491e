// Package embedded runs a NATS server with JetStream inside the process, for
// a cluster of one machine: tests, a laptop, or a small team's broker
// (`wasmpool serve-nats`). It is the only wasmpool package that links the
// NATS server.
//
// StartServer starts the server alone; Start starts a Node: the server, a
// cluster.Executor and local workers, all connected in-process (no port)
// and running tasks exactly as a cluster of many hosts would. With
// ServerConfig.Listen set, workers on other hosts join it with
// `wasmpool worker --nats URL`.
package embedded

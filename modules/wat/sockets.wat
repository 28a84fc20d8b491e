;; sockets: WASI command that tries every socket call WASI preview 1 has (sock_accept, sock_recv, sock_send,
;; sock_shutdown) on file descriptors 0 to 9 (stdio, any preopened directory, and unused ones), then writes the 40
;; errno values to stdout, one byte each, in the order fd 0: accept, recv, send, shutdown; fd 1: ... A sandbox
;; without network must answer every one with an error: no zero (success) byte.
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; an iovec {buf=512, len=16} at 256 for recv and send; the results' iovec {buf=0, len=40} at 128
  (data (i32.const 256) "\00\02\00\00\10\00\00\00")
  (data (i32.const 128) "\00\00\00\00\28\00\00\00")
  (func (export "_start")
    (local $fd i32) (local $at i32)
    (loop $next
      (local.set $at (i32.mul (local.get $fd) (i32.const 4)))
      (i32.store8 (local.get $at) (call $accept (local.get $fd) (i32.const 0) (i32.const 600)))
      (i32.store8 offset=1 (local.get $at)
        (call $recv (local.get $fd) (i32.const 256) (i32.const 1) (i32.const 0) (i32.const 604) (i32.const 608)))
      (i32.store8 offset=2 (local.get $at)
        (call $send (local.get $fd) (i32.const 256) (i32.const 1) (i32.const 0) (i32.const 612)))
      ;; how = 3: shut down both directions
      (i32.store8 offset=3 (local.get $at) (call $shutdown (local.get $fd) (i32.const 3)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $fd) (i32.const 10))))
    (drop (call $fd_write (i32.const 1) (i32.const 128) (i32.const 1) (i32.const 136)))))

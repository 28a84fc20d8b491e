;; fibcmd: a WASI command that writes "started\n" to stdout and, given any
;; argument, then computes fib(60) by naive recursion with no loop at all
;; (years of work): until its instance is stopped at a function entry, only
;; the process ending stops it. Without an argument it stops there, so that
;; running every fixture's _start (the engine's fuzz seeds do) ends.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec {buf=16, len=8} at address 0; message at 16; argc, argv size at 32, 36
  (data (i32.const 0) "\10\00\00\00\08\00\00\00")
  (data (i32.const 16) "started\n")
  (func $fib (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add
        (call $fib (i64.sub (local.get $n) (i64.const 1)))
        (call $fib (i64.sub (local.get $n) (i64.const 2)))))))
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (if (i32.ge_u (i32.load (i32.const 32)) (i32.const 2))
      (then (drop (call $fib (i64.const 60)))))))

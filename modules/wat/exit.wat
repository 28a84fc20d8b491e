;; exit: WASI command whose _start calls proc_exit(argc - 1), to test exit-code propagation.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (call $proc_exit (i32.sub (i32.load (i32.const 0)) (i32.const 1)))))

;; hello: WASI command that writes "hello from wasm\n" to stdout with fd_write and returns from _start.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec {buf=16, len=16} at address 0; message at 16
  (data (i32.const 0) "\10\00\00\00\10\00\00\00")
  (data (i32.const 16) "hello from wasm\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))

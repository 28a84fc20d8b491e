;; nomem: a module without a memory that calls the ABI anyway. Every pointer
;; it passes is out of bounds (there is nothing to point into): the task must
;; fail with an out-of-bounds trap, and the host must not notice otherwise.
(module
  (import "wasmpool" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (func (export "read") (result i32)
    (drop (call $input_read (i32.const 0) (i32.const 1)))
    (i32.const 0))
  (func (export "write") (result i32)
    (drop (call $output_write (i32.const 0) (i32.const 0)))
    (i32.const 0)))

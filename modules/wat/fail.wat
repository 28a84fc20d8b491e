;; fail: "fail" writes "bad input" via error_write and returns 1 (a guest-reported failure).
(module
  (import "wasmpool" "error_write" (func $error_write (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "bad input")
  (func (export "fail") (result i32)
    (call $error_write (i32.const 0) (i32.const 9))
    (i32.const 1)))

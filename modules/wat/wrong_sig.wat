;; wrong_sig: imports wasmpool.input_size with the wrong signature (i64) -> i32 (link must fail).
(module
  (import "wasmpool" "input_size" (func $input_size (param i64) (result i32)))
  (func (export "run") (result i32)
    (call $input_size (i64.const 0))))

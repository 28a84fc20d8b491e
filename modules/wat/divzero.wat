;; divzero: "run" performs i32.div_s by zero (trap "integer divide by zero").
(module
  (global $zero (mut i32) (i32.const 0))
  (func (export "run") (result i32)
    (i32.div_s (i32.const 42) (global.get $zero))))

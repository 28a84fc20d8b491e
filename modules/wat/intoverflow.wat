;; intoverflow: "run" performs i32.div_s INT_MIN / -1 (trap "integer overflow").
(module
  (global $min (mut i32) (i32.const 0x80000000))
  (global $neg1 (mut i32) (i32.const -1))
  (func (export "run") (result i32)
    (i32.div_s (global.get $min) (global.get $neg1))))

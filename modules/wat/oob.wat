;; oob: "run" loads an i32 past the end of a 1-page memory (trap "out of bounds memory access").
(module
  (memory 1)
  (global $addr (mut i32) (i32.const 65536))
  (func (export "run") (result i32)
    (i32.load (global.get $addr))))

;; unknown_import: imports "env" "mystery", which no host provides (instantiation must fail cleanly).
(module
  (import "env" "mystery" (func $mystery))
  (func (export "run") (result i32)
    (call $mystery)
    (i32.const 0)))

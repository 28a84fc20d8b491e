;; noop: smallest task module; "noop" returns 0 immediately (baseline for overhead benchmarks).
(module
  (memory (export "memory") 1)
  (func (export "noop") (result i32) (i32.const 0)))

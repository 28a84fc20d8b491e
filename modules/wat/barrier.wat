;; barrier: "run" calls the test host function test.barrier (used to synchronise concurrency tests).
(module
  (import "test" "barrier" (func $barrier))
  (func (export "run") (result i32)
    (call $barrier)
    (i32.const 0)))

;; hostwait: "run" calls test.wait, a host function the test defines (one that
;; blocks on its context, say), and returns 0.
(module
  (import "test" "wait" (func $wait))
  (func (export "run") (result i32)
    (call $wait)
    (i32.const 0)))

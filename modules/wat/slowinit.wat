;; slowinit: a reactor whose _initialize and whose "run" each call test.wait,
;; a host function the test defines (one that takes a while): a task's
;; timeout must bound the two together.
(module
  (import "test" "wait" (func $wait))
  (func (export "_initialize") (call $wait))
  (func (export "run") (result i32)
    (call $wait)
    (i32.const 0)))

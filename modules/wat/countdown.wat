;; countdown: "run" counts its parameter down to zero in a loop with no calls,
;; then calls the test host function test.done: whether done is reached tells
;; whether a timeout stopped the loop in the middle.
(module
  (import "test" "done" (func $done))
  (func (export "run") (param $n i32) (result i32)
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (call $done)
    (i32.const 0)))

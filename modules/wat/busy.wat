;; busy: "loop" and "recurse" call test.barrier (so a test knows the guest is
;; running), then never end on their own: "loop" spins in a loop without
;; calls, "recurse" computes fib(60) by a recursion without any loop. Only a
;; stop (timeout, cancel, interrupt, close, fuel) ends them.
(module
  (import "test" "barrier" (func $barrier))
  (func $fib (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add
        (call $fib (i64.sub (local.get $n) (i64.const 1)))
        (call $fib (i64.sub (local.get $n) (i64.const 2)))))))
  (func (export "loop") (result i32)
    (local $x i32)
    (call $barrier)
    (loop $l
      (local.set $x (i32.add (local.get $x) (i32.const 1)))
      (br $l))
    (i32.const 0))
  (func (export "recurse") (result i32)
    (call $barrier)
    (drop (call $fib (i64.const 60)))
    (i32.const 0)))

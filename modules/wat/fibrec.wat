;; fibrec: "fib" computes fib(n) by naive recursion with no loop at all, as C,
;; Rust or hand-written wasm compile it: only function entries can stop it.
;; fib(50) takes minutes, so a timeout or a cancel must cut it short.
(module
  (func $fib (export "fib") (param $n i64) (result i64)
    (if (result i64) (i64.lt_u (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add
        (call $fib (i64.sub (local.get $n) (i64.const 1)))
        (call $fib (i64.sub (local.get $n) (i64.const 2))))))))

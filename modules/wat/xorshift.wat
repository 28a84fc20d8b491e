;; xorshift: "run" iterates a 64-bit xorshift generator n times in one tight
;; loop without calls and returns the last state: a loop's interruption
;; checks cost the most here, relative to the work.
(module
  (func (export "run") (param $n i64) (result i64)
    (local $x i64)
    (local.set $x (i64.const 88172645463325252))
    (block $out
      (loop $l
        (br_if $out (i64.eqz (local.get $n)))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $l)))
    (local.get $x)))

;; recurse: "run" calls a function that recurses without a base case (trap "stack overflow").
(module
  (func $r (param $n i32) (result i32)
    (i32.add (call $r (i32.add (local.get $n) (i32.const 1))) (local.get $n)))
  (func (export "run") (result i32)
    (call $r (i32.const 0))))

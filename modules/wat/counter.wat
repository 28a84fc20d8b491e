;; counter: "count" increments a mutable global and returns it, used to test instance state isolation/reuse.
(module
  (global $n (mut i64) (i64.const 0))
  (func (export "count") (result i64)
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (global.get $n)))

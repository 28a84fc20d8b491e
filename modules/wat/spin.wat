;; spin: "spin" loops forever and never returns, used to test timeouts and cancellation.
(module
  (func (export "spin") (result i32)
    (loop $l (br $l))
    (i32.const 0)))

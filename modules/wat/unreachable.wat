;; unreachable: "run" executes the unreachable instruction (trap "wasm error: unreachable").
(module
  (func (export "run") (result i32)
    unreachable))

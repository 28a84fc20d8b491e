;; start_trap: the module's start function traps (unreachable), so instantiation itself fails.
(module
  (func $boom unreachable)
  (start $boom)
  (func (export "run") (result i32) (i32.const 0)))

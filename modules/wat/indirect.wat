;; indirect: "run" does call_indirect through a table entry of the wrong type (trap "indirect call type mismatch").
(module
  (type $i2i (func (param i32) (result i32)))
  (type $v2i (func (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $target)
  (global $idx (mut i32) (i32.const 0))
  (func $target (param i32) (result i32) (local.get 0))
  (func (export "run") (result i32)
    (call_indirect (type $v2i) (global.get $idx))))

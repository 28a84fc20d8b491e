;; tablemut: state outside memory and globals. "swap" replaces a table entry
;; with table.set, and "load" copies a passive data segment with memory.init:
;; a module like this cannot be pre-initialised from a template.
(module
  (type $t (func (result i32)))
  (table $tab 2 funcref)
  (memory 1)
  (data $d "passive")
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (elem (i32.const 0) $one $two)
  (elem declare func $two)
  (func (export "swap") (result i32)
    (table.set $tab (i32.const 0) (ref.func $two))
    (call_indirect (type $t) (i32.const 0)))
  (func (export "load") (result i32)
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 7))
    (i32.const 0)))

;; tablegrow: a table declared without a maximum, as Go's are; "grow" (n) -> old size or -1 grows it by n null elements,
;; "size" () -> its size. A guest growing a table by billions of elements must get -1, not crash the host.
(module
  (table $t 1 funcref)
  (func (export "grow") (param $n i32) (result i32)
    (table.grow $t (ref.null func) (local.get $n)))
  (func (export "size") (result i32)
    (table.size $t)))

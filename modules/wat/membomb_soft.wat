;; membomb_soft: "run" grows memory until memory.grow returns -1, then returns 7 (no trap).
(module
  (memory 1)
  (func (export "run") (result i32)
    (block $done
      (loop $l
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $l)))
    (i32.const 7)))

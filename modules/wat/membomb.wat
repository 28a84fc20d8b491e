;; membomb: "run" grows memory one page at a time forever; traps (unreachable) once memory.grow fails.
(module
  (memory 1)
  (func (export "run") (result i32)
    (loop $l
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
        (then unreachable))
      (br $l))
    (i32.const 0)))

;; echo: "echo" reads the whole input (growing memory as needed) and writes it back as output.
(module
  (import "wasmpool" "input_size" (func $input_size (result i32)))
  (import "wasmpool" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "wasmpool" "error_write" (func $error_write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $n i32) (local $need i32) (local $have i32)
    (local.set $n (call $input_size))
    ;; pages needed = ceil(n / 65536), at least 1
    (local.set $need (i32.shr_u (i32.add (local.get $n) (i32.const 65535)) (i32.const 16)))
    (local.set $have (memory.size))
    (if (i32.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (local.get $have))) (i32.const -1))
          (then (return (i32.const 2))))))
    (drop (call $input_read (i32.const 0) (local.get $n)))
    (if (i32.ne (call $output_write (i32.const 0) (local.get $n)) (i32.const 0))
      (then (return (i32.const 1))))
    (i32.const 0)))

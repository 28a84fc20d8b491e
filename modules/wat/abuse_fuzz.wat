;; abuse_fuzz: "run" reads (op, ptr, len, unused) from input and calls host ABI function op%4 with them (fuzz target).
(module
  (import "wasmpool" "input_size" (func $input_size (result i32)))
  (import "wasmpool" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "wasmpool" "error_write" (func $error_write (param i32 i32)))
  (memory 1)
  (func (export "run") (result i32)
    (local $op i32) (local $ptr i32) (local $len i32)
    (drop (call $input_read (i32.const 0) (i32.const 16)))
    (local.set $op (i32.rem_u (i32.load (i32.const 0)) (i32.const 4)))
    (local.set $ptr (i32.load (i32.const 4)))
    (local.set $len (i32.load (i32.const 8)))
    (block $b3
      (block $b2
        (block $b1
          (block $b0
            (br_table $b0 $b1 $b2 $b3 (local.get $op)))
          ;; op 0
          (drop (call $input_read (local.get $ptr) (local.get $len)))
          (return (i32.const 0)))
        ;; op 1
        (drop (call $output_write (local.get $ptr) (local.get $len)))
        (return (i32.const 0)))
      ;; op 2
      (call $error_write (local.get $ptr) (local.get $len))
      (return (i32.const 0)))
    ;; op 3
    (drop (call $input_size))
    (i32.const 0)))

;; abuse_fuzz: "run" treats its input as a program of 12-byte records (op, ptr, len: little-endian u32s) and makes
;; one host ABI call per record: op%4 = 0 input_read(ptr, len), 1 output_write(ptr, len), 2 error_write(ptr, len),
;; 3 input_size(). The records are copied to the second page first (at most 64 KiB of them); the calls may then
;; overwrite them. Returns 1 if it called error_write, else 0. The fuzz test predicts every outcome.
(module
  (import "wasmpool" "input_size" (func $input_size (result i32)))
  (import "wasmpool" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "wasmpool" "error_write" (func $error_write (param i32 i32)))
  (memory 2)
  (func (export "run") (result i32)
    (local $n i32) (local $i i32) (local $at i32) (local $ptr i32) (local $len i32) (local $errs i32)
    (local.set $n (i32.div_u (call $input_read (i32.const 65536) (i32.const 65536)) (i32.const 12)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.add (i32.const 65536) (i32.mul (local.get $i) (i32.const 12))))
        (local.set $ptr (i32.load offset=4 (local.get $at)))
        (local.set $len (i32.load offset=8 (local.get $at)))
        (block $b3
          (block $b2
            (block $b1
              (block $b0
                (br_table $b0 $b1 $b2 $b3 (i32.rem_u (i32.load (local.get $at)) (i32.const 4))))
              (drop (call $input_read (local.get $ptr) (local.get $len)))
              (br $b3))
            (drop (call $output_write (local.get $ptr) (local.get $len)))
            (br $b3))
          (call $error_write (local.get $ptr) (local.get $len))
          (local.set $errs (i32.add (local.get $errs) (i32.const 1))))
        ;; op 3 (and the end of every other op): input_size, whose result is dropped
        (drop (call $input_size))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.ne (local.get $errs) (i32.const 0))))

;; flood: "flood" writes 64 KiB chunks of output until output_write returns -1, then returns 1.
(module
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory 2)
  (data (i32.const 0) "flood flood flood flood flood flood flood flood flood flood flood\n")
  (func (export "flood") (result i32)
    (loop $l
      (br_if $l (i32.ne (call $output_write (i32.const 0) (i32.const 65536)) (i32.const -1))))
    (i32.const 1)))

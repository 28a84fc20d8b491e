;; leftover: probes what a fresh instance can see of an earlier one's memory.
;; "poke" grows memory by 3 pages and writes its input at the start of the
;; last page and at the very end of the first page; "peek" grows the same way
;; and outputs the same two regions, 64 bytes each. On a fresh instance
;; "peek" must see only zeros, whatever "poke" wrote before in another one.
(module
  (import "wasmpool" "input_size" (func $input_size (result i32)))
  (import "wasmpool" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasmpool" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $grow (result i32)
    (if (i32.eq (memory.grow (i32.const 3)) (i32.const -1))
      (then (return (i32.const 1))))
    (i32.const 0))
  (func (export "poke") (result i32)
    (local $n i32)
    (if (call $grow) (then (return (i32.const 1))))
    (local.set $n (call $input_size))
    (if (i32.gt_u (local.get $n) (i32.const 64)) (then (local.set $n (i32.const 64))))
    ;; the start of page 3 (offset 196608) and the last 64 bytes of page 0
    (drop (call $input_read (i32.const 196608) (local.get $n)))
    (drop (call $input_read (i32.const 65472) (local.get $n)))
    (i32.const 0))
  (func (export "peek") (result i32)
    (if (call $grow) (then (return (i32.const 1))))
    (if (call $output_write (i32.const 196608) (i32.const 64)) (then (return (i32.const 2))))
    (if (call $output_write (i32.const 65472) (i32.const 64)) (then (return (i32.const 2))))
    (i32.const 0)))

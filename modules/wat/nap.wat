;; nap: "run" calls test.barrier (so a test knows the guest is running), then sleeps for an hour in WASI poll_oneoff
;; on a monotonic clock, as Go's time.Sleep does. A timeout or cancel must wake it.
(module
  (import "test" "barrier" (func $barrier))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  ;; one 48-byte subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic),
  ;; timeout 3600e9 ns (relative), precision 0, flags 0
  (data (i32.const 16) "\01\00\00\00\00\00\00\00\00\a0\b8\30\46\03\00\00")
  (func (export "run") (result i32)
    (call $barrier)
    ;; the event is written at 64, the number of events at 128
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (i32.const 0)))

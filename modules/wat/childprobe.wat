;; childprobe: tasks that fail at the level of the host process, to test
;; subprocess isolation. Each export calls a host function of the "test"
;; module that the pool tests' worker processes define: block until told to
;; stop, write garbage or a malformed frame on the protocol pipe, exit the
;; process, or die of a Go runtime fatal error.
(module
  (import "test" "block" (func $block))
  (import "test" "garbage" (func $garbage))
  (import "test" "badframe" (func $badframe))
  (import "test" "exit" (func $exit))
  (import "test" "fatal" (func $fatal))
  (func (export "block") (result i32) (call $block) (i32.const 0))
  (func (export "garbage") (result i32) (call $garbage) (i32.const 0))
  (func (export "badframe") (result i32) (call $badframe) (i32.const 0))
  (func (export "exit") (result i32) (call $exit) (i32.const 0))
  (func (export "fatal") (result i32) (call $fatal) (i32.const 0)))

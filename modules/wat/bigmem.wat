;; bigmem: declares a 8192-page (512 MiB) minimum memory, to test memory-limit enforcement at instantiation.
(module
  (memory 8192)
  (func (export "run") (result i32) (i32.const 0)))

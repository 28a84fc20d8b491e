;; plugin_greedy: imports a host function that is not granted (fs.delete_everything), to test import allow-listing.
(module
  (import "fs" "delete_everything" (func $del (result i32)))
  (func (export "run") (result i32)
    (call $del)))

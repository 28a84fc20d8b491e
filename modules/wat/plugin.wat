;; plugin: "compute" returns host.double(x) + 1, to test user-supplied host modules.
(module
  (import "host" "double" (func $double (param i32) (result i32)))
  (func (export "compute") (param i32) (result i32)
    (i32.add (call $double (local.get 0)) (i32.const 1))))

;; badconv: "run" performs i32.trunc_f32_s on NaN (trap "invalid conversion to integer").
(module
  (global $nan (mut f32) (f32.const nan))
  (func (export "run") (result i32)
    (i32.trunc_f32_s (global.get $nan))))

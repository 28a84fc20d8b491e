//! The Rust guest SDK for wasmpool (std, wasm32-wasi, no dependencies).
//!
//! It has the surface of the Go SDK (package guest): [`serve`] one task
//! (its input in, its output or its error out), [`call`] a host capability
//! and tell its errors apart ([`ErrorKind`]: the host function's error, not
//! granted, no such function), and [`http`] through the host's "http"
//! capability, encoded as the Go SDK encodes it.
//!
//! A task is an exported function `() -> i32`; a module of tasks is a
//! library built as a `cdylib` for wasm32-wasi:
//!
//! ```ignore
//! #[no_mangle]
//! pub extern "C" fn lookup() -> i32 {
//!     wasmpool::serve(|key| match wasmpool::call("kv", "get", &key) {
//!         Ok(v) => Ok([&key[..], b"=", &v[..]].concat()),
//!         Err(e) if e.kind == wasmpool::ErrorKind::Host => Ok(format!("no value ({})", e).into_bytes()),
//!         Err(e) => Err(e), // not granted, no such function: the task fails with the host's message
//!     })
//! }
//!
//! // HTTP, to the hosts the task is allowed:
//! let resp = wasmpool::http::get("https://api.example.com/items")?;
//! // resp.status, resp.body, resp.header("Content-Type")
//! ```
//!
//! Build it without cargo, as modules/rust/build.sh does:
//!
//! ```text
//! rustc --edition 2021 --target wasm32-wasi --crate-type rlib --crate-name wasmpool guest/rust/src/lib.rs -o libwasmpool.rlib
//! rustc --edition 2021 --target wasm32-wasi --crate-type cdylib --extern wasmpool=libwasmpool.rlib -o mod.wasm mod.rs
//! ```
//!
//! or with cargo, as a path dependency, `crate-type = ["cdylib"]` and
//! `cargo build --target wasm32-wasip1`.
//!
//! The ABI underneath is the host module "wasmpool": input_size, input_read,
//! output_write, error_write, capability_call, capability_result_size and
//! capability_result_read (see the Go SDK's documentation, guest/doc.go).

use std::fmt;

pub mod http;

mod abi {
    #[link(wasm_import_module = "wasmpool")]
    extern "C" {
        pub fn input_size() -> i32;
        pub fn input_read(ptr: *mut u8, len: i32) -> i32;
        pub fn output_write(ptr: *const u8, len: i32) -> i32;
        pub fn error_write(ptr: *const u8, len: i32);
        pub fn capability_call(
            name: *const u8,
            name_len: i32,
            func: *const u8,
            func_len: i32,
            input: *const u8,
            input_len: i32,
        ) -> i32;
        pub fn capability_result_size() -> i32;
        pub fn capability_result_read(ptr: *mut u8, len: i32) -> i32;
    }
}

// What the host holds for the guest (the input, a call's result) is read in
// two calls, its size then a copy: the one pair both reads share.
fn read_held(
    size: unsafe extern "C" fn() -> i32,
    read: unsafe extern "C" fn(*mut u8, i32) -> i32,
) -> Vec<u8> {
    let n = unsafe { size() }.max(0);
    let mut buf = vec![0u8; n as usize];
    if n > 0 {
        let got = unsafe { read(buf.as_mut_ptr(), n) };
        buf.truncate(got.clamp(0, n) as usize);
    }
    buf
}

/// Returns the whole input of the current task. Reading is stateless on the
/// host, so it may be called more than once.
pub fn input() -> Vec<u8> {
    read_held(abi::input_size, abi::input_read)
}

/// The error of [`write`] once the task's output has gone past the host's
/// limit: the task has failed already; stop producing output and return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit;

impl fmt::Display for OutputLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wasmpool: output limit exceeded")
    }
}

impl std::error::Error for OutputLimit {}

/// Appends `p` to the task's output.
pub fn write(p: &[u8]) -> Result<(), OutputLimit> {
    if p.is_empty() {
        return Ok(());
    }
    if p.len() > i32::MAX as usize || unsafe { abi::output_write(p.as_ptr(), p.len() as i32) } < 0 {
        return Err(OutputLimit);
    }
    Ok(())
}

/// Appends `msg` to the task's failure message and returns 1, so that a
/// task can end with `return wasmpool::fail("why")`.
pub fn fail(msg: &str) -> i32 {
    if !msg.is_empty() {
        unsafe { abi::error_write(msg.as_ptr(), msg.len().min(i32::MAX as usize) as i32) };
    }
    1
}

/// Runs `f` on the task's input and reports its result to the host: the
/// output is written and 0 returned on success; the error's text becomes
/// the failure message and 1 is returned on failure (also when the output
/// is over the host's limit). A panic in `f` is not caught: it traps, and
/// the instance is finished.
pub fn serve<F, E>(f: F) -> i32
where
    F: FnOnce(Vec<u8>) -> Result<Vec<u8>, E>,
    E: fmt::Display,
{
    match f(input()) {
        Ok(out) => match write(&out) {
            Ok(()) => 0,
            Err(OutputLimit) => 1,
        },
        Err(e) => fail(&e.to_string()),
    }
}

/// Why a [`call`] did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The host function returned an error (or the SDK could not read its
    /// answer): the message is its text.
    Host,
    /// The task is not granted the capability, or the host lacks it.
    NotGranted,
    /// The capability has no such function.
    NoFunc,
}

/// The error of a [`call`]: the host's message (a host function's error
/// text, or why the call was refused) and its kind. It displays as the
/// message alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub capability: String,
    pub func: String,
    pub message: String,
    pub kind: ErrorKind,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

/// Calls function `func` of the host capability with `input`, and returns
/// its output or its error. The host copies `input` before the call.
pub fn call(capability: &str, func: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
    let err = |kind, message: String| CallError {
        capability: capability.to_string(),
        func: func.to_string(),
        message,
        kind,
    };
    let limit = i32::MAX as usize;
    if capability.len() > limit || func.len() > limit || input.len() > limit {
        return Err(err(
            ErrorKind::Host,
            "wasmpool: a capability call's argument is over 2 GiB".to_string(),
        ));
    }
    let status = unsafe {
        abi::capability_call(
            capability.as_ptr(),
            capability.len() as i32,
            func.as_ptr(),
            func.len() as i32,
            input.as_ptr(),
            input.len() as i32,
        )
    };
    let res = read_held(abi::capability_result_size, abi::capability_result_read);
    let kind = match status {
        0 => return Ok(res),
        2 => ErrorKind::NotGranted,
        3 => ErrorKind::NoFunc,
        _ => ErrorKind::Host,
    };
    Err(err(kind, String::from_utf8_lossy(&res).into_owned()))
}

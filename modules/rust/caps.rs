//! caps: the example of the Rust SDK (guest/rust, crate wasmpool), with the
//! SDK exports and outputs of the Go guest modules/go/caps; guest/sdk_test.go
//! runs both, and the C and AssemblyScript ones, and expects the same from
//! each (see modules/c/caps.c for what each export does).

use wasmpool::{http, CallError, ErrorKind};

/// The call named by the input "CAPABILITY\nFUNC\nPAYLOAD" (missing parts
/// empty).
fn split(input: &[u8]) -> (String, String, &[u8]) {
    let mut parts = input.splitn(3, |&b| b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let (capability, func) = (next(), next());
    let payload = next();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (text(capability), text(func), payload)
}

fn named_call(input: &[u8]) -> Result<Vec<u8>, CallError> {
    let (capability, func, payload) = split(input);
    wasmpool::call(&capability, &func, payload)
}

#[no_mangle]
pub extern "C" fn call() -> i32 {
    wasmpool::serve(|input| named_call(&input))
}

#[no_mangle]
pub extern "C" fn handled() -> i32 {
    wasmpool::serve(|input| {
        Ok::<_, CallError>(match named_call(&input) {
            Ok(out) => [&b"ok: "[..], &out].concat(),
            Err(e) => format!(
                "error: {} (not granted: {}, no func: {})",
                e,
                e.kind == ErrorKind::NotGranted,
                e.kind == ErrorKind::NoFunc
            )
            .into_bytes(),
        })
    })
}

#[no_mangle]
pub extern "C" fn twice() -> i32 {
    wasmpool::serve(|input| {
        let a = named_call(&input)?;
        let b = named_call(&input)?;
        Ok::<_, CallError>([&a[..], b"|", &b].concat())
    })
}

#[no_mangle]
pub extern "C" fn pure() -> i32 {
    wasmpool::serve(|input| Ok::<_, CallError>(input.to_ascii_uppercase()))
}

#[no_mangle]
pub extern "C" fn fetch() -> i32 {
    wasmpool::serve(|url| {
        let resp = http::get(&String::from_utf8_lossy(&url))?;
        Ok::<_, CallError>([format!("{} ", resp.status).as_bytes(), &resp.body].concat())
    })
}

#[no_mangle]
pub extern "C" fn post() -> i32 {
    wasmpool::serve(|input| {
        let nl = input
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(input.len());
        let req = http::Request {
            method: "POST".to_string(),
            url: String::from_utf8_lossy(&input[..nl]).into_owned(),
            headers: vec![("X-Test".to_string(), "yes".to_string())],
            body: input.get(nl + 1..).unwrap_or_default().to_vec(),
        };
        let resp = http::send(&req)?;
        let head = format!("{} {} ", resp.status, resp.header("X-Reply").unwrap_or(""));
        Ok::<_, CallError>([head.as_bytes(), &resp.body].concat())
    })
}

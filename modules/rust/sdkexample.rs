//! sdkexample: the guest SDKs' shared example written against the Rust SDK
//! (guest/rust, crate wasmpool): the exports and outputs of
//! modules/go/sdkexample, which documents them; guest/sdk_test.go runs both.

use wasmpool::{http, ErrorKind};

/// lookup: KEY -> "KEY=VALUE"; the host function's error handled as a
/// value; a refused call fails the task with the host's message.
#[no_mangle]
pub extern "C" fn lookup() -> i32 {
    wasmpool::serve(|key| {
        let k = String::from_utf8_lossy(&key);
        match wasmpool::call("kv", "get", &key) {
            Ok(v) => Ok(format!("{}={}", k, String::from_utf8_lossy(&v)).into_bytes()),
            Err(e) if e.kind == ErrorKind::Host => {
                Ok(format!("{}: no value ({})", k, e).into_bytes())
            }
            Err(e) => Err(e),
        }
    })
}

/// probe: "CAPABILITY\nFUNC\nPAYLOAD" -> the outcome of that call, whatever it is.
#[no_mangle]
pub extern "C" fn probe() -> i32 {
    wasmpool::serve(|input| {
        let mut parts = input.splitn(3, |&b| b == b'\n');
        let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let (cap, func) = (next(), next());
        let payload = input.splitn(3, |&b| b == b'\n').nth(2).unwrap_or_default();
        let out = match wasmpool::call(&cap, &func, payload) {
            Ok(v) => [&b"ok: "[..], &v].concat(),
            Err(e) => {
                let label = match e.kind {
                    ErrorKind::NotGranted => "not granted",
                    ErrorKind::NoFunc => "no func",
                    ErrorKind::Host => "error",
                };
                format!("{}: {}", label, e).into_bytes()
            }
        };
        Ok::<_, wasmpool::CallError>(out)
    })
}

fn report(resp: http::Response, header: &str) -> Vec<u8> {
    let head = format!("{} {} ", resp.status, resp.header(header).unwrap_or("-"));
    [head.as_bytes(), &resp.body].concat()
}

/// fetch: URL -> "STATUS X-GREETING BODY"; a refused request fails the task.
#[no_mangle]
pub extern "C" fn fetch() -> i32 {
    wasmpool::serve(|url| {
        http::get(&String::from_utf8_lossy(&url)).map(|r| report(r, "X-Greeting"))
    })
}

/// post: "URL\nBODY" -> a POST of BODY with X-Test: yes, "STATUS X-REPLY BODY".
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
        http::send(&req).map(|r| report(r, "X-Reply"))
    })
}

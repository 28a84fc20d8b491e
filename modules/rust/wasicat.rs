//! wasicat: a small WASI command built with rustc (std only, target
//! wasm32-wasi), used to test that wasmpool runs modules from a non-Go
//! toolchain exactly as `wazero run` does. It speaks the command line of
//! modules/c/wasicat.c, so one table of cases drives every toolchain:
//!
//!   (no args)      copy stdin to stdout as it comes (like cat), exit 0
//!   -a ARGS...     print argv[0] and each ARG, one per line
//!   -e NAME        print the value of NAME and "\n" (exit 1 if unset)
//!   -E             print the whole environment, one KEY=VALUE a line, in order
//!   -f PATH        print the file's contents exactly (exit 1 on error)
//!   -w PATH TEXT   create or truncate PATH and write TEXT (exit 1 on error)
//!   -x N           exit with code N
//!   -s TEXT        write TEXT to stderr, exit 0
//!   -t             trap: a Rust panic, which on wasm32-wasi aborts
//!
//! A usage error exits 2.

use std::env;
use std::fs;
use std::io::{self, Read, Write};
use std::process::exit;

fn usage() -> ! {
    eprintln!("usage: wasicat [-a ARGS...|-e NAME|-E|-f PATH|-w PATH TEXT|-x N|-s TEXT|-t]");
    exit(2)
}

fn fail(what: &str, err: io::Error) -> ! {
    eprintln!("wasicat: {}: {}", what, err);
    exit(1)
}

fn main() {
    let args: Vec<String> = env::args().collect();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let opt = match args.get(1) {
        Some(opt) => opt.as_str(),
        None => {
            // Each chunk is written as soon as it is read, so that, like
            // cat, it answers an interactive stdin line by line.
            let mut buf = vec![0u8; 65536];
            let stdin = io::stdin();
            let mut input = stdin.lock();
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => fail("stdin", err),
                };
                if let Err(err) = out.write_all(&buf[..n]).and_then(|_| out.flush()) {
                    fail("stdout", err);
                }
            }
        }
    };
    let rest = &args[2..];
    let result = match (opt, rest) {
        ("-a", _) => {
            let mut r = writeln!(out, "{}", args[0]);
            for a in rest {
                r = r.and_then(|_| writeln!(out, "{}", a));
            }
            r
        }
        ("-e", [name]) => match env::var(name) {
            Ok(v) => writeln!(out, "{}", v),
            Err(_) => {
                eprintln!("wasicat: {} is not set", name);
                exit(1)
            }
        },
        ("-E", []) => {
            let mut r = Ok(());
            for (k, v) in env::vars() {
                r = r.and_then(|_| writeln!(out, "{}={}", k, v));
            }
            r
        }
        ("-f", [path]) => match fs::read(path) {
            Ok(body) => out.write_all(&body),
            Err(err) => fail(path, err),
        },
        ("-w", [path, text]) => match fs::write(path, text) {
            Ok(()) => Ok(()),
            Err(err) => fail(path, err),
        },
        ("-x", [code]) => exit(code.parse().unwrap_or(0)),
        ("-s", [text]) => {
            eprint!("{}", text);
            Ok(())
        }
        ("-t", []) => {
            out.flush().ok();
            panic!("wasicat: trap requested")
        }
        _ => usage(),
    };
    if let Err(err) = result.and_then(|_| out.flush()) {
        fail("stdout", err);
    }
}

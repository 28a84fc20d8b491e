//! HTTP through the host's "http" capability (package capability/httpcap),
//! to the hosts the task is allowed: the guest has no sockets of its own. A
//! request the host's policy refuses (a host off the list, a response over
//! the cap, a timeout) is an error; a response of any status is not.
//!
//! The capability's message is the Go SDK's (guest/http.go): a JSON header,
//! its length first as 4 bytes little-endian, then the body.

use crate::{call, CallError, ErrorKind};

/// A request; an empty method means GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    /// One entry per value; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, its body read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// One entry per value, in the host's order within a name.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Fetches `url`.
pub fn get(url: &str) -> Result<Response, CallError> {
    send(&Request {
        method: "GET".to_string(),
        url: url.to_string(),
        ..Default::default()
    })
}

/// Sends `req` and returns the response (the Go SDK's HTTP.Do).
pub fn send(req: &Request) -> Result<Response, CallError> {
    let out = call("http", "request", &encode(req))?;
    decode(&out).ok_or_else(|| CallError {
        capability: "http".to_string(),
        func: "request".to_string(),
        message: "wasmpool: the host's HTTP response is malformed".to_string(),
        kind: ErrorKind::Host,
    })
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &c in s.as_bytes() {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode(req: &Request) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"{\"method\":");
    json_string(
        &mut h,
        if req.method.is_empty() {
            "GET"
        } else {
            &req.method
        },
    );
    h.extend_from_slice(b",\"url\":");
    json_string(&mut h, &req.url);
    if !req.headers.is_empty() {
        // A JSON object holds each name once: a name's values go together.
        h.extend_from_slice(b",\"header\":{");
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &req.headers {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                h.push(b',');
            }
            json_string(&mut h, name);
            h.extend_from_slice(b":[");
            for (j, (_, v)) in req.headers.iter().filter(|(k, _)| k == name).enumerate() {
                if j > 0 {
                    h.push(b',');
                }
                json_string(&mut h, v);
            }
            h.push(b']');
        }
        h.push(b'}');
    }
    h.push(b'}');
    let mut out = Vec::with_capacity(4 + h.len() + req.body.len());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&req.body);
    out
}

fn decode(msg: &[u8]) -> Option<Response> {
    if msg.len() < 4 {
        return None;
    }
    let n = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
    if n > msg.len() - 4 {
        return None;
    }
    let mut j = Json {
        s: &msg[4..4 + n],
        i: 0,
    };
    let mut resp = Response {
        body: msg[4 + n..].to_vec(),
        ..Default::default()
    };
    j.lit(b'{')?;
    if j.lit(b'}').is_some() {
        return Some(resp);
    }
    loop {
        let key = j.string()?;
        j.lit(b':')?;
        match key.as_str() {
            "status" => resp.status = j.number()?,
            "header" => j.header(&mut resp.headers)?,
            _ => j.skip(0)?,
        }
        if j.lit(b',').is_none() {
            break;
        }
    }
    j.lit(b'}')?;
    Some(resp)
}

/// A reader of the response's JSON header
/// (`{"status":N,"header":{NAME:[VALUE...]}}`).
struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        if self.peek()? != c {
            return None;
        }
        self.i += 1;
        Some(())
    }

    fn number(&mut self) -> Option<u16> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.lit(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let r = match e {
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => 10,
                        b'r' => 13,
                        b't' => 9,
                        b'"' | b'\\' | b'/' => e as u32,
                        b'u' => {
                            let r = self.hex4()?;
                            if (0xd800..0xdc00).contains(&r) {
                                // A surrogate pair if its second half follows;
                                // alone, it reads as U+FFFD, as encoding/json
                                // reads it.
                                let save = self.i;
                                let lo = if self.s[self.i..].starts_with(b"\\u") {
                                    self.i += 2;
                                    self.hex4()
                                } else {
                                    None
                                };
                                match lo {
                                    Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                        0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00)
                                    }
                                    _ => {
                                        self.i = save;
                                        0xfffd
                                    }
                                }
                            } else {
                                r
                            }
                        }
                        _ => return None,
                    };
                    let ch = char::from_u32(r).unwrap_or('\u{fffd}');
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn header(&mut self, headers: &mut Vec<(String, String)>) -> Option<()> {
        if self.peek()? == b'n' {
            return self.skip(0);
        }
        self.lit(b'{')?;
        if self.lit(b'}').is_some() {
            return Some(());
        }
        loop {
            let name = self.string()?;
            self.lit(b':')?;
            self.lit(b'[')?;
            if self.lit(b']').is_none() {
                loop {
                    headers.push((name.clone(), self.string()?));
                    if self.lit(b',').is_none() {
                        break;
                    }
                }
                self.lit(b']')?;
            }
            if self.lit(b',').is_none() {
                break;
            }
        }
        self.lit(b'}')
    }

    /// Skips any value.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > 64 {
            return None;
        }
        let c = self.peek()?;
        match c {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.lit(close).is_some() {
                    return Some(());
                }
                loop {
                    if c == b'{' {
                        self.string()?;
                        self.lit(b':')?;
                    }
                    self.skip(depth + 1)?;
                    if self.lit(b',').is_none() {
                        break;
                    }
                }
                self.lit(close)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"0123456789+-.eEtrufalsn".contains(&self.s[self.i])
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

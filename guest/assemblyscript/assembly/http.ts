// HTTP through the host's "http" capability (package capability/httpcap),
// to the hosts the task is allowed: the guest has no sockets of its own. A
// request the host's policy refuses (a host off the list, a response over
// the cap, a timeout) is an error; a response of any status is not.
//
// The capability's message is the Go SDK's (guest/http.go): a JSON header,
// its length first as 4 bytes little-endian, then the body.

import { Bytes, call, Status, text, utf8 } from "./index";

/** One header value; a name may repeat. */
export class Header {
  constructor(public name: string, public value: string) {}
}

/** A request; an empty method means GET. */
export class HttpRequest {
  method: string = "GET";
  url: string = "";
  headers: Header[] = [];
  body: Uint8Array = new Uint8Array(0);
}

/** A response, its body read whole. */
export class HttpResponse {
  status: i32 = 0;
  /** One entry per value, in the host's order within a name. */
  headers: Header[] = [];
  body: Uint8Array = new Uint8Array(0);

  /** The first value of header name (ASCII case-insensitive), or null. */
  header(name: string): string | null {
    const want = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i].name.toLowerCase() == want) return this.headers[i].value;
    }
    return null;
  }
}

/** The outcome of a request: the response when ok, else why it failed (with
 * Status.NotGranted when the task is not granted HTTP). */
export class HttpResult {
  constructor(public status: Status, public response: HttpResponse | null, public message: string) {}
  get ok(): bool {
    return this.status == Status.OK;
  }
}

export namespace HTTP {
  /** Fetches url. */
  export function get(url: string): HttpResult {
    const req = new HttpRequest();
    req.url = url;
    return send(req);
  }

  /** Sends req and returns the response (the Go SDK's HTTP.Do). */
  export function send(req: HttpRequest): HttpResult {
    const r = call("http", "request", encode(req));
    if (!r.ok) return new HttpResult(r.status, null, r.message);
    const resp = decode(r.output);
    if (resp === null) return new HttpResult(Status.Error, null, "wasmpool: the host's HTTP response is malformed");
    return new HttpResult(Status.OK, resp, "");
  }
}

const HEX = "0123456789abcdef";

function jsonString(out: Bytes, s: string): void {
  const b = utf8(s);
  out.push(0x22);
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c == 0x22 || c == 0x5c) {
      out.push(0x5c).push(c);
    } else if (c < 0x20) {
      out.appendString("\\u00").push(<u8>HEX.charCodeAt(c >> 4)).push(<u8>HEX.charCodeAt(c & 15));
    } else {
      out.push(c);
    }
  }
  out.push(0x22);
}

function encode(req: HttpRequest): Uint8Array {
  const h = new Bytes();
  h.appendString('{"method":');
  jsonString(h, req.method.length > 0 ? req.method : "GET");
  h.appendString(',"url":');
  jsonString(h, req.url);
  if (req.headers.length > 0) {
    // A JSON object holds each name once: a name's values go together.
    h.appendString(',"header":{');
    const names: string[] = [];
    for (let i = 0; i < req.headers.length; i++) {
      if (!names.includes(req.headers[i].name)) names.push(req.headers[i].name);
    }
    for (let i = 0; i < names.length; i++) {
      if (i > 0) h.push(0x2c);
      jsonString(h, names[i]);
      h.appendString(":[");
      let first = true;
      for (let j = 0; j < req.headers.length; j++) {
        if (req.headers[j].name != names[i]) continue;
        if (!first) h.push(0x2c);
        jsonString(h, req.headers[j].value);
        first = false;
      }
      h.push(0x5d);
    }
    h.push(0x7d);
  }
  h.push(0x7d);
  const out = new Bytes();
  const n = <u32>h.length;
  out.push(<u8>n).push(<u8>(n >> 8)).push(<u8>(n >> 16)).push(<u8>(n >> 24));
  return out.append(h.bytes()).append(req.body).bytes();
}

function decode(msg: Uint8Array): HttpResponse | null {
  if (msg.length < 4) return null;
  const n = <u32>msg[0] | (<u32>msg[1] << 8) | (<u32>msg[2] << 16) | (<u32>msg[3] << 24);
  if (<u64>n > <u64>(msg.length - 4)) return null;
  const j = new Json(msg.subarray(4, 4 + <i32>n));
  const resp = new HttpResponse();
  resp.body = msg.slice(4 + <i32>n);
  if (!j.lit(0x7b)) return null;
  if (j.lit(0x7d)) return resp;
  do {
    const key = j.str();
    if (key === null || !j.lit(0x3a)) return null;
    if (key == "status") {
      const v = j.number();
      if (v < 0) return null;
      resp.status = v;
    } else if (key == "header") {
      if (!j.header(resp.headers)) return null;
    } else if (!j.skip(0)) {
      return null;
    }
  } while (j.lit(0x2c));
  return j.lit(0x7d) ? resp : null;
}

/** A reader of the response's JSON header ({"status":N,"header":{NAME:[VALUE...]}}). */
class Json {
  i: i32 = 0;
  constructor(public s: Uint8Array) {}

  ws(): void {
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.i++;
    }
  }

  /** The next byte after any space, or -1 at the end. */
  peek(): i32 {
    this.ws();
    return this.i < this.s.length ? <i32>this.s[this.i] : -1;
  }

  lit(c: i32): bool {
    if (this.peek() != c) return false;
    this.i++;
    return true;
  }

  /** A whole number, or -1. */
  number(): i32 {
    this.ws();
    const start = this.i;
    let v = 0;
    while (this.i < this.s.length && this.s[this.i] >= 0x30 && this.s[this.i] <= 0x39 && v < 100000) {
      v = v * 10 + (<i32>this.s[this.i] - 0x30);
      this.i++;
    }
    return this.i > start ? v : -1;
  }

  /** Four hex digits, or -1. */
  hex4(): i32 {
    if (this.s.length - this.i < 4) return -1;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = <i32>this.s[this.i++];
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /** A string, its escapes decoded to UTF-8 and then to text, or null. */
  str(): string | null {
    if (!this.lit(0x22)) return null;
    const out = new Bytes();
    for (;;) {
      if (this.i >= this.s.length) return null;
      const c = this.s[this.i++];
      if (c == 0x22) break;
      if (c != 0x5c) {
        out.push(c);
        continue;
      }
      if (this.i >= this.s.length) return null;
      const e = this.s[this.i++];
      let r: i32;
      if (e == 0x62) r = 8;
      else if (e == 0x66) r = 12;
      else if (e == 0x6e) r = 10;
      else if (e == 0x72) r = 13;
      else if (e == 0x74) r = 9;
      else if (e == 0x22 || e == 0x5c || e == 0x2f) r = e;
      else if (e == 0x75) {
        r = this.hex4();
        if (r < 0) return null;
        if (r >= 0xd800 && r < 0xdc00) {
          // A surrogate pair if its second half follows; alone, it reads as
          // U+FFFD, as encoding/json reads it.
          const save = this.i;
          let lo = -1;
          if (this.s.length - this.i >= 6 && this.s[this.i] == 0x5c && this.s[this.i + 1] == 0x75) {
            this.i += 2;
            lo = this.hex4();
          }
          if (lo >= 0xdc00 && lo < 0xe000) {
            r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
          } else {
            this.i = save;
            r = 0xfffd;
          }
        } else if (r >= 0xdc00 && r < 0xe000) {
          r = 0xfffd;
        }
      } else return null;
      utf8Rune(out, r);
    }
    return text(out.bytes());
  }

  header(headers: Header[]): bool {
    if (this.peek() == 0x6e) return this.skip(0); // null
    if (!this.lit(0x7b)) return false;
    if (this.lit(0x7d)) return true;
    do {
      const name = this.str();
      if (name === null || !this.lit(0x3a) || !this.lit(0x5b)) return false;
      if (!this.lit(0x5d)) {
        do {
          const v = this.str();
          if (v === null) return false;
          headers.push(new Header(name, v));
        } while (this.lit(0x2c));
        if (!this.lit(0x5d)) return false;
      }
    } while (this.lit(0x2c));
    return this.lit(0x7d);
  }

  /** Skips any value. */
  skip(depth: i32): bool {
    const c = this.peek();
    if (c < 0 || depth > 64) return false;
    if (c == 0x22) return this.str() !== null;
    if (c == 0x7b || c == 0x5b) {
      const close = c == 0x7b ? 0x7d : 0x5d;
      this.i++;
      if (this.lit(close)) return true;
      do {
        if (c == 0x7b && (this.str() === null || !this.lit(0x3a))) return false;
        if (!this.skip(depth + 1)) return false;
      } while (this.lit(0x2c));
      return this.lit(close);
    }
    const start = this.i; // a number, true, false or null
    while (this.i < this.s.length && "0123456789+-.eEtrufalsn".includes(String.fromCharCode(this.s[this.i]))) this.i++;
    return this.i > start;
  }
}

function utf8Rune(out: Bytes, r: i32): void {
  if (r < 0x80) {
    out.push(<u8>r);
  } else if (r < 0x800) {
    out.push(<u8>(0xc0 | (r >> 6))).push(<u8>(0x80 | (r & 0x3f)));
  } else if (r < 0x10000) {
    out.push(<u8>(0xe0 | (r >> 12))).push(<u8>(0x80 | ((r >> 6) & 0x3f))).push(<u8>(0x80 | (r & 0x3f)));
  } else {
    out
      .push(<u8>(0xf0 | (r >> 18)))
      .push(<u8>(0x80 | ((r >> 12) & 0x3f)))
      .push(<u8>(0x80 | ((r >> 6) & 0x3f)))
      .push(<u8>(0x80 | (r & 0x3f)));
  }
}

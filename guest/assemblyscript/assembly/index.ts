// The AssemblyScript guest SDK for wasmpool, with the surface of the Go SDK
// (package guest): serve one task (its input in, its output or its error
// out), call a host capability and tell its errors apart (the host
// function's error, not granted, no such function), and HTTP through the
// host's "http" capability (./http.ts), encoded as the Go SDK encodes it.
//
// A task is an exported function () => i32; a module of tasks is a WASI
// reactor: build it with @assemblyscript/wasi-shim's asconfig and
// `--exportStart _initialize` (the shim's own default, _start, would make it
// a command), as modules/assemblyscript/build.sh does.
//
//   import { serve, call, Outcome, Status, HTTP } from "wasmpool-guest"; // or a relative path to assembly/index
//
//   export function lookup(): i32 {
//     return serve((key: Uint8Array): Outcome => {
//       const r = call("kv", "get", key);
//       if (!r.ok) return Outcome.fail(r.message); // r.status tells why
//       return Outcome.ok(r.output);
//     });
//   }
//
//   // HTTP, to the hosts the task is allowed:
//   const r = HTTP.get("https://api.example.com/items");
//   if (r.ok) { r.response!.status; r.response!.body; r.response!.header("Content-Type"); }
//
// AssemblyScript has no closures: a task's function may not capture locals.
//
// The ABI underneath is the host module "wasmpool": input_size, input_read,
// output_write, error_write, capability_call, capability_result_size and
// capability_result_read (see the Go SDK's documentation, guest/doc.go).

export { HTTP, Header, HttpRequest, HttpResponse, HttpResult } from "./http";

@external("wasmpool", "input_size")
declare function input_size(): i32;
@external("wasmpool", "input_read")
declare function input_read(ptr: usize, len: i32): i32;
@external("wasmpool", "output_write")
declare function output_write(ptr: usize, len: i32): i32;
@external("wasmpool", "error_write")
declare function error_write(ptr: usize, len: i32): void;
@external("wasmpool", "capability_call")
declare function capability_call(name: usize, nameLen: i32, fn: usize, fnLen: i32, input: usize, inputLen: i32): i32;
@external("wasmpool", "capability_result_size")
declare function capability_result_size(): i32;
@external("wasmpool", "capability_result_read")
declare function capability_result_read(ptr: usize, len: i32): i32;

/** The UTF-8 bytes of s. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The text of UTF-8 bytes b. */
export function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

/** Returns the whole input of the current task. Reading is stateless on the
 * host, so it may be called more than once. */
export function input(): Uint8Array {
  let n = input_size();
  if (n < 0) n = 0;
  const buf = new Uint8Array(n);
  if (n == 0) return buf;
  const got = input_read(buf.dataStart, n);
  return got >= n ? buf : buf.slice(0, got < 0 ? 0 : got);
}

/** Appends p to the task's output; false once the host has refused it for
 * being over the output limit (the task has failed already: stop and
 * return). */
export function write(p: Uint8Array): bool {
  if (p.length == 0) return true;
  return output_write(p.dataStart, p.length) >= 0;
}

/** Appends msg to the task's failure message and returns 1, so that a task
 * can end with `return fail("why")`. */
export function fail(msg: string): i32 {
  const b = utf8(msg);
  if (b.length > 0) error_write(b.dataStart, b.length);
  return 1;
}

/** What a task's function returns: its output, or the error it fails with. */
export class Outcome {
  constructor(public output: Uint8Array, public error: string | null) {}
  static ok(output: Uint8Array): Outcome {
    return new Outcome(output, null);
  }
  /** Succeeds with the UTF-8 bytes of s. */
  static text(s: string): Outcome {
    return new Outcome(utf8(s), null);
  }
  static fail(msg: string): Outcome {
    return new Outcome(new Uint8Array(0), msg);
  }
}

/** Runs fn on the task's input and reports its result to the host: the
 * output is written and 0 returned on success; the error becomes the
 * failure message and 1 is returned on failure (also when the output is
 * over the host's limit). */
export function serve(fn: (input: Uint8Array) => Outcome): i32 {
  const r = fn(input());
  const err = r.error;
  if (err !== null) return fail(err);
  return write(r.output) ? 0 : 1;
}

/** The status of a call: capability_call's own. */
export enum Status {
  /** The output is the function's. */
  OK = 0,
  /** The host function (or the HTTP request) failed: the message is its error. */
  Error = 1,
  /** The task is not granted the capability, or the host lacks it. */
  NotGranted = 2,
  /** The capability has no such function. */
  NoFunc = 3,
}

/** The outcome of a call: its output when ok, else the host's message (a host
 * function's error text, or why the call was refused). */
export class CallResult {
  constructor(
    public capability: string,
    public func: string,
    public status: Status,
    public output: Uint8Array,
    public message: string,
  ) {}
  get ok(): bool {
    return this.status == Status.OK;
  }
}

/** Calls function func of the host capability with input. The host copies
 * input before the call. */
export function call(capability: string, func: string, input: Uint8Array): CallResult {
  const c = utf8(capability),
    f = utf8(func);
  let st = capability_call(c.dataStart, c.length, f.dataStart, f.length, input.dataStart, input.length);
  let n = capability_result_size();
  if (n < 0) n = 0;
  let res = new Uint8Array(n);
  if (n > 0) {
    const got = capability_result_read(res.dataStart, n);
    if (got < n) res = res.slice(0, got < 0 ? 0 : got);
  }
  if (st < Status.OK || st > Status.NoFunc) st = Status.Error;
  if (st == Status.OK) return new CallResult(capability, func, st, res, "");
  return new CallResult(capability, func, st, new Uint8Array(0), text(res));
}

/** A growing byte buffer. */
export class Bytes {
  buf: Uint8Array = new Uint8Array(64);
  length: i32 = 0;

  private grow(n: i32): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    memory.copy(b.dataStart, this.buf.dataStart, <usize>this.length);
    this.buf = b;
  }
  push(c: u8): Bytes {
    this.grow(1);
    this.buf[this.length++] = c;
    return this;
  }
  append(p: Uint8Array): Bytes {
    this.grow(p.length);
    memory.copy(this.buf.dataStart + <usize>this.length, p.dataStart, <usize>p.length);
    this.length += p.length;
    return this;
  }
  /** Appends the UTF-8 bytes of s. */
  appendString(s: string): Bytes {
    return this.append(utf8(s));
  }
  /** The bytes so far, as a fresh array. */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

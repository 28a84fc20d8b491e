// caps: the example of the AssemblyScript SDK (guest/assemblyscript), with
// the SDK exports and outputs of the Go guest modules/go/caps;
// guest/sdk_test.go runs both, and the C and Rust ones, and expects the same
// from each (see modules/c/caps.c for what each export does).

import {
  Bytes,
  call as callCapability,
  CallResult,
  Header,
  HTTP,
  HttpRequest,
  Outcome,
  serve,
  Status,
  text,
} from "../../guest/assemblyscript/assembly/index";

// namedCall makes the call named by the input "CAPABILITY\nFUNC\nPAYLOAD"
// (missing parts empty).
function namedCall(input: Uint8Array): CallResult {
  let a = input.indexOf(0x0a);
  if (a < 0) a = input.length;
  let b = a < input.length ? input.indexOf(0x0a, a + 1) : -1;
  if (b < 0) b = input.length;
  const func = a < input.length ? text(input.subarray(a + 1, b)) : "";
  const payload = b < input.length ? input.subarray(b + 1) : new Uint8Array(0);
  return callCapability(text(input.subarray(0, a)), func, payload);
}

export function call(): i32 {
  return serve((input: Uint8Array): Outcome => {
    const r = namedCall(input);
    return r.ok ? Outcome.ok(r.output) : Outcome.fail(r.message);
  });
}

export function handled(): i32 {
  return serve((input: Uint8Array): Outcome => {
    const r = namedCall(input);
    if (r.ok) return Outcome.ok(new Bytes().appendString("ok: ").append(r.output).bytes());
    const notGranted = r.status == Status.NotGranted ? "true" : "false";
    const noFunc = r.status == Status.NoFunc ? "true" : "false";
    return Outcome.text("error: " + r.message + " (not granted: " + notGranted + ", no func: " + noFunc + ")");
  });
}

export function twice(): i32 {
  return serve((input: Uint8Array): Outcome => {
    const a = namedCall(input);
    if (!a.ok) return Outcome.fail(a.message);
    const b = namedCall(input);
    if (!b.ok) return Outcome.fail(b.message);
    return Outcome.ok(new Bytes().append(a.output).push(0x7c).append(b.output).bytes());
  });
}

export function pure(): i32 {
  return serve((input: Uint8Array): Outcome => {
    const out = input.slice(0);
    for (let i = 0; i < out.length; i++) {
      if (out[i] >= 0x61 && out[i] <= 0x7a) out[i] -= 0x20;
    }
    return Outcome.ok(out);
  });
}

export function fetch(): i32 {
  return serve((url: Uint8Array): Outcome => {
    const r = HTTP.get(text(url));
    if (!r.ok) return Outcome.fail(r.message);
    const resp = r.response!;
    return Outcome.ok(new Bytes().appendString(resp.status.toString() + " ").append(resp.body).bytes());
  });
}

export function post(): i32 {
  return serve((input: Uint8Array): Outcome => {
    let nl = input.indexOf(0x0a);
    if (nl < 0) nl = input.length;
    const req = new HttpRequest();
    req.method = "POST";
    req.url = text(input.subarray(0, nl));
    req.headers = [new Header("X-Test", "yes")];
    req.body = nl < input.length ? input.slice(nl + 1) : new Uint8Array(0);
    const r = HTTP.send(req);
    if (!r.ok) return Outcome.fail(r.message);
    const resp = r.response!;
    const reply = resp.header("X-Reply");
    const head = resp.status.toString() + " " + (reply !== null ? reply : "") + " ";
    return Outcome.ok(new Bytes().appendString(head).append(resp.body).bytes());
  });
}

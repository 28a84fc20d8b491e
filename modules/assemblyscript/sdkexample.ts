// sdkexample: the guest SDKs' shared example written against the
// AssemblyScript SDK (guest/assemblyscript): the exports and outputs of
// modules/go/sdkexample, which documents them; guest/sdk_test.go runs both.

import { Bytes, call, HTTP, HttpRequest, HttpResult, Header, Outcome, serve, Status, text } from "../../guest/assemblyscript/assembly/index";

// lookup: KEY -> "KEY=VALUE"; the host function's error handled as a value;
// a refused call fails the task with the host's message.
export function lookup(): i32 {
  return serve((key: Uint8Array): Outcome => {
    const r = call("kv", "get", key);
    if (r.status == Status.OK) return Outcome.text(text(key) + "=" + text(r.output));
    if (r.status == Status.Error) return Outcome.text(text(key) + ": no value (" + r.message + ")");
    return Outcome.fail(r.message);
  });
}

// probe: "CAPABILITY\nFUNC\nPAYLOAD" -> the outcome of that call, whatever it is.
export function probe(): i32 {
  return serve((input: Uint8Array): Outcome => {
    let a = input.indexOf(0x0a);
    if (a < 0) a = input.length;
    let b = a < input.length ? input.indexOf(0x0a, a + 1) : -1;
    if (b < 0) b = input.length;
    const cap = text(input.subarray(0, a));
    const func = a < input.length ? text(input.subarray(a + 1, b)) : "";
    const payload = b < input.length ? input.subarray(b + 1) : new Uint8Array(0);
    const r = call(cap, func, payload);
    if (r.ok) return Outcome.ok(new Bytes().appendString("ok: ").append(r.output).bytes());
    const label = r.status == Status.NotGranted ? "not granted" : r.status == Status.NoFunc ? "no func" : "error";
    return Outcome.text(label + ": " + r.message);
  });
}

function report(r: HttpResult, header: string): Outcome {
  if (!r.ok) return Outcome.fail(r.message);
  const resp = r.response!;
  const h = resp.header(header);
  const head = resp.status.toString() + " " + (h !== null ? h : "-") + " ";
  return Outcome.ok(new Bytes().appendString(head).append(resp.body).bytes());
}

// fetch: URL -> "STATUS X-GREETING BODY"; a refused request fails the task.
export function fetch(): i32 {
  return serve((url: Uint8Array): Outcome => report(HTTP.get(text(url)), "X-Greeting"));
}

// post: "URL\nBODY" -> a POST of BODY with X-Test: yes, "STATUS X-REPLY BODY".
export function post(): i32 {
  return serve((input: Uint8Array): Outcome => {
    let nl = input.indexOf(0x0a);
    if (nl < 0) nl = input.length;
    const req = new HttpRequest();
    req.method = "POST";
    req.url = text(input.subarray(0, nl));
    req.headers = [new Header("X-Test", "yes")];
    req.body = nl < input.length ? input.slice(nl + 1) : new Uint8Array(0);
    return report(HTTP.send(req), "X-Reply");
  });
}

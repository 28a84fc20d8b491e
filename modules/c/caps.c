// caps: the example of the C SDK (guest/c/wasmpool.h), with the SDK exports
// and outputs of the Go guest modules/go/caps; guest/sdk_test.go runs both,
// and the Rust and AssemblyScript ones, and expects the same from each.
//
//   call      input "CAPABILITY\nFUNC\nPAYLOAD": outputs the call's result;
//             its error fails the task with the host's message
//   handled   the same call, its outcome as the output: "ok: RESULT", or
//             "error: MESSAGE (not granted: BOOL, no func: BOOL)"
//   twice     the same call two times: "RESULT|RESULT"
//   pure      no capability: the input upper-cased (ASCII letters; Go's
//             bytes.ToUpper also maps other scripts')
//   fetch     input URL: HTTP GET, outputs "STATUS BODY"
//   post      input "URL\nBODY": HTTP POST of BODY with header X-Test: yes,
//             outputs "STATUS X-REPLY BODY"
//
// (The Go module's badpointer and badresult misuse the raw ABI on purpose,
// which an SDK does not let a guest do: they have no counterpart here.)
#include "wasmpool.h"

// A call named by the input "CAPABILITY\nFUNC\nPAYLOAD" (missing parts empty).
typedef struct {
	wasmpool_buf capability, func;
	const uint8_t *payload;
	size_t payload_len;
} named_call;

static int split(const wasmpool_buf *in, named_call *c) {
	memset(c, 0, sizeof *c);
	const uint8_t *p = in->data, *end = in->data + in->len;
	wasmpool_buf *parts[2] = {&c->capability, &c->func};
	for (int i = 0; i < 2; i++) {
		const uint8_t *nl = memchr(p, '\n', end - p);
		if (wasmpool_buf_append(parts[i], p, (nl ? nl : end) - p)) return WASMPOOL_NO_MEMORY;
		p = nl ? nl + 1 : end;
	}
	c->payload = p;
	c->payload_len = end - p;
	return 0;
}

static void named_call_free(named_call *c) {
	wasmpool_buf_free(&c->capability);
	wasmpool_buf_free(&c->func);
}

// do_call makes the call into result: its status.
static int do_call(const named_call *c, wasmpool_buf *result) {
	return wasmpool_call((const char *)c->capability.data, (const char *)c->func.data, c->payload, c->payload_len, result);
}

static int call_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	named_call c;
	int st = split(in, &c);
	if (st == 0) st = do_call(&c, out);
	if (st != WASMPOOL_OK) {
		// out holds the host's message, which fails the task
		wasmpool_buf_append(err, out->data, out->len);
	}
	named_call_free(&c);
	return st != WASMPOOL_OK;
}

__attribute__((export_name("call"))) int32_t call(void) { return wasmpool_serve(call_task); }

static int handled_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	named_call c;
	wasmpool_buf res = {0};
	int st = split(in, &c);
	if (st == 0) st = do_call(&c, &res);
	int rc;
	if (st == WASMPOOL_OK) {
		rc = wasmpool_buf_puts(out, "ok: ") || wasmpool_buf_append(out, res.data, res.len);
	} else if (st == WASMPOOL_NO_MEMORY) {
		rc = wasmpool_buf_puts(err, "out of memory");
	} else {
		rc = wasmpool_buf_printf(out, "error: %s (not granted: %s, no func: %s)", res.data,
			st == WASMPOOL_NOT_GRANTED ? "true" : "false", st == WASMPOOL_NO_FUNC ? "true" : "false");
	}
	wasmpool_buf_free(&res);
	named_call_free(&c);
	return rc != 0;
}

__attribute__((export_name("handled"))) int32_t handled(void) { return wasmpool_serve(handled_task); }

static int twice_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	named_call c;
	wasmpool_buf a = {0}, b = {0};
	wasmpool_buf *last = &a; // the result of the last call made: a failure's message
	int st = split(in, &c);
	if (st == 0) st = do_call(&c, &a);
	if (st == WASMPOOL_OK) st = do_call(&c, last = &b);
	int rc = st != WASMPOOL_OK;
	if (rc) {
		wasmpool_buf_append(err, last->data, last->len);
	} else {
		rc = wasmpool_buf_append(out, a.data, a.len) || wasmpool_buf_puts(out, "|") || wasmpool_buf_append(out, b.data, b.len);
	}
	wasmpool_buf_free(&a);
	wasmpool_buf_free(&b);
	named_call_free(&c);
	return rc;
}

__attribute__((export_name("twice"))) int32_t twice(void) { return wasmpool_serve(twice_task); }

static int pure_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	(void)err;
	if (wasmpool_buf_append(out, in->data, in->len)) return 1;
	for (size_t i = 0; i < out->len; i++) {
		if (out->data[i] >= 'a' && out->data[i] <= 'z') out->data[i] -= 'a' - 'A';
	}
	return 0;
}

__attribute__((export_name("pure"))) int32_t pure(void) { return wasmpool_serve(pure_task); }

static int fetch_task(const wasmpool_buf *url, wasmpool_buf *out, wasmpool_buf *err) {
	wasmpool_http_response resp;
	if (wasmpool_http_get((const char *)url->data, &resp, err) != WASMPOOL_OK) return 1;
	int rc = wasmpool_buf_printf(out, "%d ", resp.status) || wasmpool_buf_append(out, resp.body.data, resp.body.len);
	wasmpool_http_response_free(&resp);
	return rc;
}

__attribute__((export_name("fetch"))) int32_t fetch(void) { return wasmpool_serve(fetch_task); }

static int post_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	wasmpool_buf url = {0};
	const uint8_t *nl = memchr(in->data, '\n', in->len);
	size_t n = nl ? (size_t)(nl - in->data) : in->len;
	if (wasmpool_buf_append(&url, in->data, n)) return 1;
	wasmpool_header h[] = {{"X-Test", "yes"}};
	wasmpool_http_request req = {.method = "POST", .url = (const char *)url.data, .headers = h, .n_headers = 1,
		.body = nl ? nl + 1 : NULL, .body_len = nl ? in->len - n - 1 : 0};
	wasmpool_http_response resp;
	int rc = wasmpool_http_do(&req, &resp, err) != WASMPOOL_OK;
	if (!rc) {
		const char *reply = wasmpool_http_header(&resp, "X-Reply");
		rc = wasmpool_buf_printf(out, "%d %s ", resp.status, reply ? reply : "") ||
			wasmpool_buf_append(out, resp.body.data, resp.body.len);
		wasmpool_http_response_free(&resp);
	}
	wasmpool_buf_free(&url);
	return rc;
}

__attribute__((export_name("post"))) int32_t post(void) { return wasmpool_serve(post_task); }

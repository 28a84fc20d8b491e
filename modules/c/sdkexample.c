// sdkexample: the guest SDKs' shared example written against the C SDK
// (guest/c/wasmpool.h): the exports and outputs of modules/go/sdkexample,
// which documents them; guest/sdk_test.go runs both.
#include "wasmpool.h"

// lookup: KEY -> "KEY=VALUE"; the host function's error handled as a value;
// a refused call fails the task with the host's message.
static int lookup_task(const wasmpool_buf *key, wasmpool_buf *out, wasmpool_buf *err) {
	wasmpool_buf v = {0};
	int st = wasmpool_call("kv", "get", key->data, key->len, &v);
	int rc = 0;
	if (st == WASMPOOL_OK) {
		rc = wasmpool_buf_printf(out, "%s=%s", key->data, v.data);
	} else if (st == WASMPOOL_ERROR) {
		rc = wasmpool_buf_printf(out, "%s: no value (%s)", key->data, v.data);
	} else {
		wasmpool_buf_append(err, v.data, v.len);
		rc = 1;
	}
	wasmpool_buf_free(&v);
	return rc;
}

__attribute__((export_name("lookup"))) int32_t lookup(void) { return wasmpool_serve(lookup_task); }

// probe: "CAPABILITY\nFUNC\nPAYLOAD" -> the outcome of that call, whatever it is.
static int probe_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	(void)err;
	wasmpool_buf cap = {0}, fn = {0}, res = {0};
	const uint8_t *p = in->data, *end = in->data + in->len, *nl;
	nl = memchr(p, '\n', end - p);
	wasmpool_buf_append(&cap, p, (nl ? nl : end) - p);
	p = nl ? nl + 1 : end;
	nl = memchr(p, '\n', end - p);
	wasmpool_buf_append(&fn, p, (nl ? nl : end) - p);
	p = nl ? nl + 1 : end;
	int st = wasmpool_call(cap.data ? (char *)cap.data : "", fn.data ? (char *)fn.data : "", p, end - p, &res);
	static const char *const label[] = {"ok", "error", "not granted", "no func"};
	int rc = wasmpool_buf_printf(out, "%s: ", st >= 0 && st <= WASMPOOL_NO_FUNC ? label[st] : "error");
	if (rc == 0) rc = wasmpool_buf_append(out, res.data, res.len);
	wasmpool_buf_free(&cap);
	wasmpool_buf_free(&fn);
	wasmpool_buf_free(&res);
	return rc;
}

__attribute__((export_name("probe"))) int32_t probe(void) { return wasmpool_serve(probe_task); }

static int report(int st, wasmpool_http_response *resp, const char *header, wasmpool_buf *out) {
	if (st != WASMPOOL_OK) return 1; // the SDK put the reason in err
	const char *v = wasmpool_http_header(resp, header);
	int rc = wasmpool_buf_printf(out, "%d %s ", resp->status, v ? v : "-");
	if (rc == 0) rc = wasmpool_buf_append(out, resp->body.data, resp->body.len);
	wasmpool_http_response_free(resp);
	return rc;
}

// fetch: URL -> "STATUS X-GREETING BODY"; a refused request fails the task.
static int fetch_task(const wasmpool_buf *url, wasmpool_buf *out, wasmpool_buf *err) {
	wasmpool_http_response resp;
	return report(wasmpool_http_get((const char *)url->data, &resp, err), &resp, "X-Greeting", out);
}

__attribute__((export_name("fetch"))) int32_t fetch(void) { return wasmpool_serve(fetch_task); }

// post: "URL\nBODY" -> a POST of BODY with X-Test: yes, "STATUS X-REPLY BODY".
static int post_task(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err) {
	wasmpool_buf url = {0};
	const uint8_t *nl = memchr(in->data, '\n', in->len);
	size_t n = nl ? (size_t)(nl - in->data) : in->len;
	if (wasmpool_buf_append(&url, in->data, n)) return 1;
	wasmpool_header h[] = {{"X-Test", "yes"}};
	wasmpool_http_request req = {.method = "POST", .url = (const char *)url.data, .headers = h, .n_headers = 1,
		.body = nl ? nl + 1 : NULL, .body_len = nl ? in->len - n - 1 : 0};
	wasmpool_http_response resp;
	int rc = report(wasmpool_http_do(&req, &resp, err), &resp, "X-Reply", out);
	wasmpool_buf_free(&url);
	return rc;
}

__attribute__((export_name("post"))) int32_t post(void) { return wasmpool_serve(post_task); }

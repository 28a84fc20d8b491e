/*
 * wasmpool.h: the C guest SDK for wasmpool (wasi-libc, clang --target=wasm32-wasi).
 *
 * A single header: every function is static inline, so including it is all a
 * module needs (no WASMPOOL_IMPLEMENTATION, no library to link); it also
 * compiles as C++. It has the
 * surface of the Go SDK (package guest): serve one task (its input in, its
 * output or its error out), call a host capability and tell its errors apart
 * (the host function's error, not granted, no such function), and HTTP
 * through the host's "http" capability, encoded as the Go SDK encodes it.
 *
 * A task is an exported function () -> int32_t; a module of tasks is a WASI
 * reactor, built with
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -I guest/c -o mod.wasm mod.c
 *
 * The host calls the reactor's _initialize once per instance, then tasks.
 *
 *     #include "wasmpool.h"
 *
 *     static int lookup_task(const wasmpool_buf *key, wasmpool_buf *out, wasmpool_buf *err) {
 *         wasmpool_buf v = {0};
 *         int st = wasmpool_call("kv", "get", key->data, key->len, &v);
 *         if (st == WASMPOOL_OK)
 *             wasmpool_buf_printf(out, "%s=%s", key->data, v.data);
 *         else
 *             wasmpool_buf_append(err, v.data, v.len); // the host's message
 *         wasmpool_buf_free(&v);
 *         return st != WASMPOOL_OK;
 *     }
 *
 *     __attribute__((export_name("lookup"))) int32_t lookup(void) { return wasmpool_serve(lookup_task); }
 *
 *     // HTTP, to the hosts the task is allowed:
 *     wasmpool_http_response resp;
 *     if (wasmpool_http_get("https://api.example.com/items", &resp, err) == WASMPOOL_OK) {
 *         // resp.status, resp.body.data / resp.body.len,
 *         // wasmpool_http_header(&resp, "Content-Type")
 *         wasmpool_http_response_free(&resp);
 *     }
 *
 * Every wasmpool_buf the SDK fills holds a NUL byte after its len bytes, so
 * text can be used as a C string (up to any NUL of its own). A zeroed
 * wasmpool_buf ({0}) is empty and ready; wasmpool_buf_free releases it.
 * Calls that allocate return WASMPOOL_NO_MEMORY when malloc fails.
 *
 * The ABI underneath is the host module "wasmpool": input_size, input_read,
 * output_write, error_write, capability_call, capability_result_size and
 * capability_result_read (see the Go SDK's documentation, guest/doc.go).
 */
#ifndef WASMPOOL_H
#define WASMPOOL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The status of wasmpool_call and the HTTP calls: capability_call's own. */
enum {
	WASMPOOL_OK = 0,          /* the result is the function's output */
	WASMPOOL_ERROR = 1,       /* the host function (or the HTTP request) failed: the result is its message */
	WASMPOOL_NOT_GRANTED = 2, /* the task is not granted the capability, or the host lacks it */
	WASMPOOL_NO_FUNC = 3      /* the capability has no such function */
};
#define WASMPOOL_OUTPUT_LIMIT (-1) /* wasmpool_write: the host's output limit is passed; stop and return */
#define WASMPOOL_NO_MEMORY (-2)    /* malloc failed */

__attribute__((import_module("wasmpool"), import_name("input_size"))) int32_t wasmpool_abi_input_size(void);
__attribute__((import_module("wasmpool"), import_name("input_read"))) int32_t wasmpool_abi_input_read(void *ptr, int32_t len);
__attribute__((import_module("wasmpool"), import_name("output_write"))) int32_t wasmpool_abi_output_write(const void *ptr, int32_t len);
__attribute__((import_module("wasmpool"), import_name("error_write"))) void wasmpool_abi_error_write(const void *ptr, int32_t len);
__attribute__((import_module("wasmpool"), import_name("capability_call"))) int32_t wasmpool_abi_capability_call(
	const void *name, int32_t name_len, const void *fn, int32_t fn_len, const void *in, int32_t in_len);
__attribute__((import_module("wasmpool"), import_name("capability_result_size"))) int32_t wasmpool_abi_capability_result_size(void);
__attribute__((import_module("wasmpool"), import_name("capability_result_read"))) int32_t wasmpool_abi_capability_result_read(void *ptr, int32_t len);

/* ---- byte buffers ---- */

typedef struct wasmpool_buf {
	uint8_t *data; /* len bytes, then a NUL; NULL while nothing was ever added */
	size_t len, cap;
} wasmpool_buf;

/* An empty buffer ({0} in C; this also in C++). */
#define WASMPOOL_BUF_INIT {NULL, 0, 0}

static inline int wasmpool_buf_reserve(wasmpool_buf *b, size_t n) {
	if (n > SIZE_MAX - 1 - b->len) return WASMPOOL_NO_MEMORY;
	if (b->data != NULL && b->len + n < b->cap) return 0;
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap <= b->len + n) cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
	uint8_t *p = (uint8_t *)realloc(b->data, cap);
	if (p == NULL) return WASMPOOL_NO_MEMORY;
	b->data = p;
	b->cap = cap;
	b->data[b->len] = 0;
	return 0;
}

/* Appends n bytes of p; 0, or WASMPOOL_NO_MEMORY. */
static inline int wasmpool_buf_append(wasmpool_buf *b, const void *p, size_t n) {
	if (wasmpool_buf_reserve(b, n) != 0) return WASMPOOL_NO_MEMORY;
	if (n > 0) memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

static inline int wasmpool_buf_puts(wasmpool_buf *b, const char *s) { return wasmpool_buf_append(b, s, strlen(s)); }

/* Appends printf's output; 0, or WASMPOOL_NO_MEMORY. */
static inline int wasmpool_buf_printf(wasmpool_buf *b, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || wasmpool_buf_reserve(b, (size_t)n) != 0) return WASMPOOL_NO_MEMORY;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

static inline void wasmpool_buf_reset(wasmpool_buf *b) {
	b->len = 0;
	if (b->data != NULL) b->data[0] = 0;
}

static inline void wasmpool_buf_free(wasmpool_buf *b) {
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- serving a task ---- */

/* Reads what the host holds (the input, a call's result) into b, replacing
 * its contents. */
static inline int wasmpool_read_held(int32_t (*size)(void), int32_t (*read)(void *, int32_t), wasmpool_buf *b) {
	wasmpool_buf_reset(b);
	int32_t n = size();
	if (n < 0) n = 0;
	if (wasmpool_buf_reserve(b, (size_t)n) != 0) return WASMPOOL_NO_MEMORY;
	int32_t got = n > 0 ? read(b->data, n) : 0;
	b->len = got < 0 ? 0 : (size_t)(got < n ? got : n);
	b->data[b->len] = 0;
	return 0;
}

/* Reads the task's whole input into in. Reading is stateless on the host, so
 * it may be read again. */
static inline int wasmpool_input(wasmpool_buf *in) {
	return wasmpool_read_held(wasmpool_abi_input_size, wasmpool_abi_input_read, in);
}

/* Appends n bytes to the task's output: 0, or WASMPOOL_OUTPUT_LIMIT once the
 * host has refused them (the task has failed already). */
static inline int wasmpool_write(const void *p, size_t n) {
	if (n == 0) return 0;
	if (n > INT32_MAX || wasmpool_abi_output_write(p, (int32_t)n) < 0) return WASMPOOL_OUTPUT_LIMIT;
	return 0;
}

/* Appends msg to the task's failure message and returns 1, so that a task
 * can end with `return wasmpool_fail("why");`. */
static inline int32_t wasmpool_fail(const char *msg) {
	size_t n = strlen(msg);
	if (n > 0) wasmpool_abi_error_write(msg, n > INT32_MAX ? INT32_MAX : (int32_t)n);
	return 1;
}

/* A task's body: it reads in, and either fills out and returns 0, or fills
 * err (the failure message) and returns non-zero. */
typedef int (*wasmpool_handler)(const wasmpool_buf *in, wasmpool_buf *out, wasmpool_buf *err);

/* Runs fn on the task's input and reports its result to the host: the output
 * is written and 0 returned on success; on failure err's text becomes the
 * failure message and 1 is returned (also when the output is over the
 * host's limit). */
static inline int32_t wasmpool_serve(wasmpool_handler fn) {
	wasmpool_buf in = WASMPOOL_BUF_INIT, out = WASMPOOL_BUF_INIT, err = WASMPOOL_BUF_INIT;
	int32_t rc = 0;
	if (wasmpool_input(&in) != 0) {
		rc = wasmpool_fail("wasmpool: out of memory reading the input");
	} else if (fn(&in, &out, &err) != 0) {
		rc = 1;
		if (err.len > 0) wasmpool_abi_error_write(err.data, err.len > INT32_MAX ? INT32_MAX : (int32_t)err.len);
	} else if (wasmpool_write(out.data, out.len) != 0) {
		rc = 1;
	}
	wasmpool_buf_free(&in);
	wasmpool_buf_free(&out);
	wasmpool_buf_free(&err);
	return rc;
}

/* ---- capabilities ---- */

/* Calls function fn of the host capability with in_len bytes of in. result
 * (its contents replaced) gets the output when the status is WASMPOOL_OK,
 * and the host's message for any other status: WASMPOOL_ERROR (the host
 * function's error), WASMPOOL_NOT_GRANTED, WASMPOOL_NO_FUNC. */
static inline int wasmpool_call(const char *capability, const char *fn, const void *in, size_t in_len, wasmpool_buf *result) {
	size_t cn = strlen(capability), fnn = strlen(fn);
	if (cn > INT32_MAX || fnn > INT32_MAX || in_len > INT32_MAX) {
		wasmpool_buf_reset(result);
		wasmpool_buf_puts(result, "wasmpool: a capability call's argument is over 2 GiB");
		return WASMPOOL_ERROR;
	}
	int32_t st = wasmpool_abi_capability_call(capability, (int32_t)cn, fn, (int32_t)fnn, in, (int32_t)in_len);
	if (wasmpool_read_held(wasmpool_abi_capability_result_size, wasmpool_abi_capability_result_read, result) != 0)
		return WASMPOOL_NO_MEMORY;
	return st >= WASMPOOL_OK && st <= WASMPOOL_NO_FUNC ? st : WASMPOOL_ERROR;
}

/* ---- HTTP, through the host's "http" capability ---- */

typedef struct wasmpool_header {
	const char *name, *value;
} wasmpool_header;

typedef struct wasmpool_http_request {
	const char *method; /* NULL or "" means GET */
	const char *url;
	const wasmpool_header *headers; /* one entry per value; a name may repeat */
	size_t n_headers;
	const void *body;
	size_t body_len;
} wasmpool_http_request;

typedef struct wasmpool_http_response {
	int status;
	wasmpool_header *headers; /* one entry per value, in the host's order within a name */
	size_t n_headers;
	wasmpool_buf body;
} wasmpool_http_response;

/* The response's first value of header name (ASCII case-insensitive), or
 * NULL. */
static inline const char *wasmpool_http_header(const wasmpool_http_response *resp, const char *name) {
	for (size_t i = 0; i < resp->n_headers; i++) {
		const char *a = resp->headers[i].name, *b = name;
		while (*a && *b) {
			char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a, y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
			if (x != y) break;
			a++, b++;
		}
		if (*a == 0 && *b == 0) return resp->headers[i].value;
	}
	return NULL;
}

static inline void wasmpool_http_response_free(wasmpool_http_response *resp) {
	for (size_t i = 0; i < resp->n_headers; i++) {
		free((void *)resp->headers[i].name);
		free((void *)resp->headers[i].value);
	}
	free(resp->headers);
	wasmpool_buf_free(&resp->body);
	memset(resp, 0, sizeof *resp);
}

/* The request's JSON header, as encoding/json reads it. */
static inline int wasmpool_json_string(wasmpool_buf *b, const char *s) {
	static const char hex[] = "0123456789abcdef";
	int rc = wasmpool_buf_append(b, "\"", 1);
	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			rc = wasmpool_buf_append(b, e, 2);
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rc = wasmpool_buf_append(b, e, 6);
		} else {
			rc = wasmpool_buf_append(b, &c, 1);
		}
	}
	return rc ? rc : wasmpool_buf_append(b, "\"", 1);
}

static inline int wasmpool_http_encode(const wasmpool_http_request *req, wasmpool_buf *b) {
	int rc = wasmpool_buf_append(b, "\0\0\0\0{\"method\":", 14);
	rc = rc ? rc : wasmpool_json_string(b, req->method && *req->method ? req->method : "GET");
	rc = rc ? rc : wasmpool_buf_puts(b, ",\"url\":");
	rc = rc ? rc : wasmpool_json_string(b, req->url ? req->url : "");
	if (req->n_headers > 0) {
		/* A JSON object holds each name once: a name's values go together. */
		rc = rc ? rc : wasmpool_buf_puts(b, ",\"header\":{");
		int first = 1;
		for (size_t i = 0; i < req->n_headers && rc == 0; i++) {
			size_t j = 0;
			while (j < i && strcmp(req->headers[j].name, req->headers[i].name) != 0) j++;
			if (j < i) continue; /* written with its first */
			rc = rc ? rc : wasmpool_buf_puts(b, first ? "" : ",");
			rc = rc ? rc : wasmpool_json_string(b, req->headers[i].name);
			rc = rc ? rc : wasmpool_buf_puts(b, ":[");
			for (size_t k = i; k < req->n_headers && rc == 0; k++) {
				if (strcmp(req->headers[k].name, req->headers[i].name) != 0) continue;
				rc = rc ? rc : wasmpool_buf_puts(b, k == i ? "" : ",");
				rc = rc ? rc : wasmpool_json_string(b, req->headers[k].value);
			}
			rc = rc ? rc : wasmpool_buf_puts(b, "]");
			first = 0;
		}
		rc = rc ? rc : wasmpool_buf_puts(b, "}");
	}
	rc = rc ? rc : wasmpool_buf_puts(b, "}");
	if (rc) return rc;
	uint32_t n = (uint32_t)(b->len - 4);
	b->data[0] = n, b->data[1] = n >> 8, b->data[2] = n >> 16, b->data[3] = n >> 24;
	return wasmpool_buf_append(b, req->body, req->body_len);
}

/* A reader of the response's JSON header ({"status":N,"header":{NAME:[VALUE...]}}). */
typedef struct wasmpool_json {
	const uint8_t *p, *end;
} wasmpool_json;

static inline void wasmpool_json_ws(wasmpool_json *j) {
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static inline int wasmpool_json_lit(wasmpool_json *j, char c) {
	wasmpool_json_ws(j);
	if (j->p < j->end && *j->p == (uint8_t)c) {
		j->p++;
		return 1;
	}
	return 0;
}

static inline int wasmpool_json_hex4(wasmpool_json *j, uint32_t *v) {
	if (j->end - j->p < 4) return 0;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = *j->p++;
		uint32_t d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
		if (d == 16) return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

static inline int wasmpool_utf8(wasmpool_buf *b, uint32_t r) {
	uint8_t u[4];
	size_t n;
	if (r < 0x80) u[0] = r, n = 1;
	else if (r < 0x800) u[0] = 0xc0 | r >> 6, u[1] = 0x80 | (r & 0x3f), n = 2;
	else if (r < 0x10000) u[0] = 0xe0 | r >> 12, u[1] = 0x80 | (r >> 6 & 0x3f), u[2] = 0x80 | (r & 0x3f), n = 3;
	else u[0] = 0xf0 | r >> 18, u[1] = 0x80 | (r >> 12 & 0x3f), u[2] = 0x80 | (r >> 6 & 0x3f), u[3] = 0x80 | (r & 0x3f), n = 4;
	return wasmpool_buf_append(b, u, n);
}

/* Reads a string into out (which may be NULL to skip it): 1, or 0 if bad. */
static inline int wasmpool_json_str(wasmpool_json *j, wasmpool_buf *out) {
	wasmpool_buf skip = WASMPOOL_BUF_INIT;
	if (out == NULL) out = &skip;
	int ok = 0;
	if (!wasmpool_json_lit(j, '"')) goto done;
	for (;;) {
		if (j->p >= j->end) goto done;
		uint8_t c = *j->p++;
		if (c == '"') break;
		if (c != '\\') {
			if (wasmpool_buf_append(out, &c, 1)) goto done;
			continue;
		}
		if (j->p >= j->end) goto done;
		c = *j->p++;
		uint32_t r;
		switch (c) {
		case 'b': r = '\b'; break;
		case 'f': r = '\f'; break;
		case 'n': r = '\n'; break;
		case 'r': r = '\r'; break;
		case 't': r = '\t'; break;
		case '"': case '\\': case '/': r = c; break;
		case 'u':
			if (!wasmpool_json_hex4(j, &r)) goto done;
			if (r >= 0xd800 && r < 0xdc00) {
				/* A surrogate pair if its second half follows; alone, it
				 * reads as U+FFFD, as encoding/json reads it. */
				wasmpool_json save = *j;
				uint32_t lo = 0;
				int pair = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u';
				if (pair) {
					j->p += 2;
					pair = wasmpool_json_hex4(j, &lo) && lo >= 0xdc00 && lo < 0xe000;
				}
				if (pair) {
					r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
				} else {
					*j = save;
					r = 0xfffd;
				}
			} else if (r >= 0xdc00 && r < 0xe000) {
				r = 0xfffd;
			}
			break;
		default: goto done;
		}
		if (wasmpool_utf8(out, r)) goto done;
	}
	ok = out->data != NULL || wasmpool_buf_append(out, "", 0) == 0;
done:
	wasmpool_buf_free(&skip);
	return ok;
}

/* Skips any value: 1, or 0 if bad. */
static inline int wasmpool_json_skip(wasmpool_json *j, int depth) {
	wasmpool_json_ws(j);
	if (j->p >= j->end || depth > 64) return 0;
	uint8_t c = *j->p;
	if (c == '"') return wasmpool_json_str(j, NULL);
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		j->p++;
		if (wasmpool_json_lit(j, close)) return 1;
		do {
			if (c == '{' && !(wasmpool_json_str(j, NULL) && wasmpool_json_lit(j, ':'))) return 0;
			if (!wasmpool_json_skip(j, depth + 1)) return 0;
		} while (wasmpool_json_lit(j, ','));
		return wasmpool_json_lit(j, close);
	}
	const uint8_t *start = j->p; /* a number, true, false or null */
	while (j->p < j->end && *j->p != 0 && strchr("0123456789+-.eEtrufalsn", *j->p) != NULL) j->p++;
	return j->p > start;
}

static inline int wasmpool_http_decode_header(wasmpool_json *j, wasmpool_http_response *resp) {
	wasmpool_json_ws(j);
	if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) return j->p += 4, 1;
	if (!wasmpool_json_lit(j, '{')) return 0;
	if (wasmpool_json_lit(j, '}')) return 1;
	do {
		wasmpool_buf name = WASMPOOL_BUF_INIT;
		if (!wasmpool_json_str(j, &name) || !wasmpool_json_lit(j, ':') || !wasmpool_json_lit(j, '[')) {
			wasmpool_buf_free(&name);
			return 0;
		}
		int ok = 1;
		if (!wasmpool_json_lit(j, ']')) {
			do {
				wasmpool_buf value = WASMPOOL_BUF_INIT, nm = WASMPOOL_BUF_INIT;
				wasmpool_header *h = (wasmpool_header *)realloc(resp->headers, (resp->n_headers + 1) * sizeof *h);
				if (h != NULL) resp->headers = h;
				if (h == NULL || !wasmpool_json_str(j, &value) || wasmpool_buf_append(&nm, name.data, name.len)) {
					wasmpool_buf_free(&value);
					wasmpool_buf_free(&nm);
					ok = 0;
					break;
				}
				h[resp->n_headers].name = (const char *)nm.data;
				h[resp->n_headers].value = (const char *)value.data;
				resp->n_headers++;
			} while (wasmpool_json_lit(j, ','));
			ok = ok && wasmpool_json_lit(j, ']');
		}
		wasmpool_buf_free(&name);
		if (!ok) return 0;
	} while (wasmpool_json_lit(j, ','));
	return wasmpool_json_lit(j, '}');
}

static inline int wasmpool_http_decode(const wasmpool_buf *msg, wasmpool_http_response *resp) {
	if (msg->len < 4) return 0;
	uint32_t n = (uint32_t)msg->data[0] | (uint32_t)msg->data[1] << 8 | (uint32_t)msg->data[2] << 16 | (uint32_t)msg->data[3] << 24;
	if ((uint64_t)n > msg->len - 4) return 0;
	wasmpool_json j = {msg->data + 4, msg->data + 4 + n};
	if (!wasmpool_json_lit(&j, '{')) return 0;
	if (!wasmpool_json_lit(&j, '}')) {
		do {
			wasmpool_buf key = WASMPOOL_BUF_INIT;
			int ok = wasmpool_json_str(&j, &key) && wasmpool_json_lit(&j, ':');
			if (ok && strcmp((const char *)key.data, "status") == 0) {
				wasmpool_json_ws(&j);
				long v = 0;
				ok = j.p < j.end && *j.p >= '0' && *j.p <= '9';
				while (ok && j.p < j.end && *j.p >= '0' && *j.p <= '9' && v < 100000) v = v * 10 + (*j.p++ - '0');
				resp->status = (int)v;
			} else if (ok && strcmp((const char *)key.data, "header") == 0) {
				ok = wasmpool_http_decode_header(&j, resp);
			} else if (ok) {
				ok = wasmpool_json_skip(&j, 0);
			}
			wasmpool_buf_free(&key);
			if (!ok) return 0;
		} while (wasmpool_json_lit(&j, ','));
		if (!wasmpool_json_lit(&j, '}')) return 0;
	}
	return wasmpool_buf_append(&resp->body, msg->data + 4 + n, msg->len - 4 - n) == 0;
}

/* Sends req through the host's "http" capability. On WASMPOOL_OK resp holds
 * the response (of any status; free it with wasmpool_http_response_free);
 * otherwise err gets why the request failed or was refused (a host off the
 * task's list, a response over the cap, a timeout, or the capability not
 * granted: WASMPOOL_NOT_GRANTED) and resp is left empty. */
static inline int wasmpool_http_do(const wasmpool_http_request *req, wasmpool_http_response *resp, wasmpool_buf *err) {
	memset(resp, 0, sizeof *resp);
	wasmpool_buf in = WASMPOOL_BUF_INIT, res = WASMPOOL_BUF_INIT;
	int st = wasmpool_http_encode(req, &in);
	if (st == 0) st = wasmpool_call("http", "request", in.data, in.len, &res);
	wasmpool_buf_free(&in);
	if (st == WASMPOOL_OK && !wasmpool_http_decode(&res, resp)) {
		wasmpool_http_response_free(resp);
		wasmpool_buf_reset(&res);
		wasmpool_buf_puts(&res, "wasmpool: the host's HTTP response is malformed");
		st = WASMPOOL_ERROR;
	}
	if (st != WASMPOOL_OK && err != NULL) wasmpool_buf_append(err, res.data, res.len);
	wasmpool_buf_free(&res);
	return st;
}

/* Fetches url (see wasmpool_http_do). */
static inline int wasmpool_http_get(const char *url, wasmpool_http_response *resp, wasmpool_buf *err) {
	wasmpool_http_request req;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.url = url;
	return wasmpool_http_do(&req, resp, err);
}

#ifdef __cplusplus
}
#endif

#endif /* WASMPOOL_H */

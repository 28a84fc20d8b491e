// kernels: the CPU benchmarks of the Go guests (fib, sha256, mixed) written
// in C and built with clang and wasi-libc, so that a benchmark shows what
// the guest's toolchain costs as well as what wasmpool costs. Each export is
// a wasmpool task (() -> i32, 0 for success) that reads its input through
// the wasmpool ABI and writes its output back; the outputs are those of the
// Go guests for the same input.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasmpool"), import_name("input_size"))) int32_t input_size(void);
__attribute__((import_module("wasmpool"), import_name("input_read"))) int32_t input_read(void *ptr, int32_t len);
__attribute__((import_module("wasmpool"), import_name("output_write"))) int32_t output_write(const void *ptr, int32_t len);
__attribute__((import_module("wasmpool"), import_name("error_write"))) void error_write(const void *ptr, int32_t len);

static uint8_t *read_input(int32_t *len) {
	*len = input_size();
	uint8_t *buf = malloc(*len + 1);
	if (buf == NULL) return NULL;
	input_read(buf, *len);
	buf[*len] = 0;
	return buf;
}

static int fail(const char *msg) {
	error_write(msg, strlen(msg));
	return 1;
}

static int parse_uint(const uint8_t *s, int32_t len, uint64_t max, uint64_t *out) {
	int32_t i = 0, j = len;
	while (i < j && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) i++;
	while (j > i && (s[j - 1] == ' ' || s[j - 1] == '\n' || s[j - 1] == '\t' || s[j - 1] == '\r')) j--;
	if (i == j) return 0;
	uint64_t v = 0;
	for (; i < j; i++) {
		if (s[i] < '0' || s[i] > '9') return 0;
		v = v * 10 + (s[i] - '0');
		if (v > max) return 0;
	}
	*out = v;
	return 1;
}

static uint64_t fib_rec(uint64_t n) { return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2); }

__attribute__((export_name("fib"))) int32_t fib(void) {
	int32_t len;
	uint8_t *in = read_input(&len);
	uint64_t n;
	if (in == NULL || !parse_uint(in, len, 92, &n)) return fail("fib wants a whole number from 0 to 92");
	free(in);
	char out[24];
	int i = sizeof out;
	uint64_t v = fib_rec(n);
	do {
		out[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	output_write(out + i, sizeof out - i);
	return 0;
}

// SHA-256 (FIPS 180-4).
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_sum(const uint8_t *data, size_t len, uint8_t out[32]) {
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	size_t i = 0;
	for (; i + 64 <= len; i += 64) sha256_block(h, data + i);
	uint8_t tail[128] = {0};
	size_t rest = len - i;
	memcpy(tail, data + i, rest);
	tail[rest] = 0x80;
	size_t tlen = rest + 9 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int k = 0; k < 8; k++) tail[tlen - 1 - k] = bits >> (8 * k);
	for (size_t k = 0; k < tlen; k += 64) sha256_block(h, tail + k);
	for (int k = 0; k < 8; k++) {
		out[4 * k] = h[k] >> 24; out[4 * k + 1] = h[k] >> 16; out[4 * k + 2] = h[k] >> 8; out[4 * k + 3] = h[k];
	}
}

static void hex(const uint8_t *in, int n, char *out) {
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

__attribute__((export_name("sha256"))) int32_t sha256(void) {
	int32_t len;
	uint8_t *in = read_input(&len);
	if (in == NULL) return fail("out of memory");
	uint8_t sum[32];
	char out[64];
	sha256_sum(in, len, sum);
	free(in);
	hex(sum, 32, out);
	output_write(out, 64);
	return 0;
}

// mixed: each round hashes 64 KiB, sorts 4,096 integers and fills and reads
// a 512-entry map, from the same pseudo-random sequence as the Go guest.
static uint64_t rng;

static uint64_t next(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_int64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

// A map from uint64 to int64 by open addressing: what Go's map does for the
// Go guest, not the same layout.
#define SLOTS 1024
static uint64_t keys[SLOTS];
static int64_t vals[SLOTS];
static uint8_t used[SLOTS];

static int64_t *slot(uint64_t k, int insert) {
	uint64_t h = k * 0x9E3779B97F4A7C15ull;
	for (uint32_t i = h >> 54;; i = (i + 1) & (SLOTS - 1)) {
		if (!used[i]) {
			if (!insert) return NULL;
			used[i] = 1;
			keys[i] = k;
			vals[i] = 0;
			return &vals[i];
		}
		if (keys[i] == k) return &vals[i];
	}
}

__attribute__((export_name("mixed"))) int32_t mixed(void) {
	int32_t len;
	uint8_t *in = read_input(&len);
	uint64_t n;
	if (in == NULL || !parse_uint(in, len, 1000000, &n)) return fail("mixed wants a number of rounds from 0 to 1000000");
	free(in);
	uint8_t *buf = malloc(64 << 10);
	int64_t *ints = malloc(4096 * sizeof *ints);
	if (buf == NULL || ints == NULL) return fail("out of memory");
	uint8_t acc[32] = {0};
	for (uint64_t r = 0; r < n; r++) {
		rng = (r + 1) | 1;
		for (int i = 0; i < 64 << 10; i += 8) {
			uint64_t v = next();
			memcpy(buf + i, &v, 8);
		}
		uint8_t sum[32];
		sha256_sum(buf, 64 << 10, sum);
		for (int i = 0; i < 4096; i++) ints[i] = (int64_t)(next() >> 1);
		qsort(ints, 4096, sizeof *ints, cmp_int64);
		memset(used, 0, sizeof used);
		for (int i = 0; i < 512; i++) *slot(next() % 4096, 1) += i;
		int64_t total = 0;
		for (uint64_t k = 0; k < 4096; k++) {
			int64_t *v = slot(k, 0);
			if (v) total += *v;
		}
		for (int i = 0; i < 32; i++) acc[i] ^= sum[i] ^ (uint8_t)ints[i * 100] ^ (uint8_t)(total >> (i % 8));
	}
	free(buf);
	free(ints);
	char out[64];
	hex(acc, 32, out);
	output_write(out, 64);
	return 0;
}

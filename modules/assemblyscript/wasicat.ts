// wasicat: a small WASI command built with AssemblyScript and
// @assemblyscript/wasi-shim, used to test that wasmpool runs modules from a
// non-Go toolchain exactly as `wazero run` does. It speaks the command line of
// modules/c/wasicat.c, so one table of cases drives every toolchain:
//
//   (no args)      copy stdin to stdout as it comes (like cat), exit 0
//   -a ARGS...     print argv[0] and each ARG, one per line
//   -e NAME        print the value of NAME and "\n" (exit 1 if unset)
//   -E             print the whole environment, one KEY=VALUE a line, in order
//   -f PATH        print the file's contents exactly (exit 1 on error)
//   -w PATH TEXT   create or truncate PATH and write TEXT (exit 1 on error)
//   -x N           exit with code N
//   -s TEXT        write TEXT to stderr, exit 0
//   -t             trap (unreachable)
//
// A usage error exits 2. The shim has no file API, so files are opened with
// the WASI calls themselves: find the preopened directory the path is under
// (as wasi-libc does), then path_open relative to it.

import {
  errno,
  errnoToString,
  fd,
  fd_close,
  fd_prestat_dir_name,
  fd_prestat_get,
  fd_read,
  fd_write,
  iovec,
  lookupflags,
  oflags,
  path_open,
  preopentype,
  prestat,
  rights,
} from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";

const CHUNK = 65536;

function usage(): void {
  process.stderr.write("usage: wasicat [-a ARGS...|-e NAME|-E|-f PATH|-w PATH TEXT|-x N|-s TEXT|-t]\n");
  process.exit(2);
}

function fail(what: string, err: errno): void {
  process.stderr.write("wasicat: " + what + ": " + errnoToString(err) + "\n");
  process.exit(1);
}

// copy reads src to its end and writes everything to dst.
function copy(src: fd, dst: fd, what: string): void {
  const buf = new ArrayBuffer(CHUNK);
  const iov = new iovec();
  const n = memory.data(sizeof<usize>());
  while (true) {
    iov.buf = changetype<usize>(buf);
    iov.buf_len = CHUNK;
    let err = fd_read(src, changetype<usize>(iov), 1, n);
    if (err != errno.SUCCESS) fail(what, err);
    let got = load<usize>(n);
    if (got == 0) return;
    writeAll(dst, changetype<usize>(buf), got);
  }
}

// writeAll writes len bytes at ptr to dst, however many calls it takes.
function writeAll(dst: fd, ptr: usize, len: usize): errno {
  const iov = new iovec();
  const n = memory.data(sizeof<usize>());
  while (len > 0) {
    iov.buf = ptr;
    iov.buf_len = len;
    let err = fd_write(dst, changetype<usize>(iov), 1, n);
    if (err != errno.SUCCESS) return err;
    let wrote = load<usize>(n);
    ptr += wrote;
    len -= wrote;
  }
  return errno.SUCCESS;
}

// preopenFor finds the preopened directory with the longest name that
// contains path. It returns the directory's fd and the path relative to it,
// or -1 when no preopen contains the path.
class Resolved {
  dir: i32 = -1;
  rel: string = "";
}

function preopenFor(path: string): Resolved {
  const best = new Resolved();
  let bestLen = -1;
  const st = memory.data(8); // prestat: u8 tag, then the name's length
  for (let dir: u32 = 3; ; dir++) {
    if (fd_prestat_get(dir, changetype<prestat>(st)) != errno.SUCCESS) break;
    if (load<u8>(st) != preopentype.DIR) continue;
    const len = load<u32>(st, 4);
    const name = new ArrayBuffer(<i32>len);
    if (fd_prestat_dir_name(dir, changetype<usize>(name), len) != errno.SUCCESS) continue;
    let prefix = String.UTF8.decode(name);
    while (prefix.length > 1 && prefix.endsWith("/")) prefix = prefix.substring(0, prefix.length - 1);
    let rel: string;
    if (prefix == "/" && path.startsWith("/")) {
      rel = path.substring(1);
    } else if (path == prefix) {
      rel = ".";
    } else if (path.startsWith(prefix + "/")) {
      rel = path.substring(prefix.length + 1);
    } else {
      continue;
    }
    if (prefix.length > bestLen) {
      bestLen = prefix.length;
      best.dir = <i32>dir;
      best.rel = rel.length == 0 ? "." : rel;
    }
  }
  return best;
}

// open opens path with the given oflags and rights, failing the command
// (as the other toolchains' libraries do, with ENOENT) when no preopen holds it.
function open(path: string, flags: oflags, base: rights): fd {
  const r = preopenFor(path);
  if (r.dir < 0) fail(path, errno.NOENT);
  const rel = String.UTF8.encode(r.rel);
  const out = memory.data(sizeof<u32>());
  const err = path_open(<fd>r.dir, lookupflags.SYMLINK_FOLLOW, changetype<usize>(rel), rel.byteLength,
    flags, base, 0, 0, out);
  if (err != errno.SUCCESS) fail(path, err);
  return load<u32>(out);
}

function catFile(path: string): void {
  const f = open(path, 0, rights.FD_READ);
  copy(f, 1, path);
  fd_close(f);
}

function writeFile(path: string, text: string): void {
  const f = open(path, oflags.CREAT | oflags.TRUNC, rights.FD_WRITE);
  const b = String.UTF8.encode(text);
  const err = writeAll(f, changetype<usize>(b), b.byteLength);
  if (err != errno.SUCCESS) fail(path, err);
  fd_close(f);
}

function main(): void {
  const argv = process.argv;
  if (argv.length < 2) {
    copy(0, 1, "stdin");
    return;
  }
  const opt = argv[1];
  const n = argv.length - 2;
  if (opt == "-a") {
    process.stdout.write(argv[0] + "\n");
    for (let i = 2; i < argv.length; i++) process.stdout.write(argv[i] + "\n");
  } else if (opt == "-e" && n == 1) {
    const env = process.env;
    if (!env.has(argv[2])) {
      process.stderr.write("wasicat: " + argv[2] + " is not set\n");
      process.exit(1);
    }
    process.stdout.write(env.get(argv[2]) + "\n");
  } else if (opt == "-E" && n == 0) {
    const env = process.env;
    const keys = env.keys();
    for (let i = 0; i < keys.length; i++) process.stdout.write(keys[i] + "=" + env.get(keys[i]) + "\n");
  } else if (opt == "-f" && n == 1) {
    catFile(argv[2]);
  } else if (opt == "-w" && n == 2) {
    writeFile(argv[2], argv[3]);
  } else if (opt == "-x" && n == 1) {
    process.exit(I32.parseInt(argv[2]));
  } else if (opt == "-s" && n == 1) {
    process.stderr.write(argv[2]);
  } else if (opt == "-t" && n == 0) {
    unreachable();
  } else {
    usage();
  }
}

main();

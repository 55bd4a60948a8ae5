import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Atomic, durable file replacement in two halves, so the slow half can run off the main thread and the commit
 * stays on it: `writeTemp` writes and fsyncs a temporary file beside the target (a database thread does this);
 * `commitTemp` runs a last check and renames it over the target, then fsyncs the directory (the main thread
 * does this, right after confirming the lease). A crash at any moment leaves the old or the new file, never a
 * torn one.
 */
export function writeTemp(tmp: string, data: Uint8Array): void {
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `beforeRename()` (which may throw, e.g. the lease is lost), rename, fsync the directory; the temp file is removed on failure. */
export function commitTemp(tmp: string, file: string, beforeRename: () => void): void {
  try {
    beforeRename();
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Writes bytes to `file` atomically and durably: temp file, fsync, `beforeRename()`, rename, fsync directory. */
export function writeFileAtomic(file: string, data: Uint8Array, beforeRename: () => void): void {
  const tmp = tempPathFor(file);
  try {
    writeTemp(tmp, data);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  commitTemp(tmp, file, beforeRename);
}

let counter = 0;

/** A temporary name beside `file`, unique in this process: `.<name>.<pid>.<n>.<random>.tmp`. */
export function tempPathFor(file: string): string {
  counter += 1;
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${counter}.${Math.random().toString(36).slice(2, 8)}.tmp`);
}

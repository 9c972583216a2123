import { isUtf8 } from 'node:buffer';

/**
 * Finds the byte positions of invalid UTF-8 in a stream of chunks, cheaply: each chunk is checked
 * with the native `isUtf8`, and only a chunk that fails is scanned byte by byte. A multi-byte
 * sequence split between two chunks is carried over to the next check.
 */
export class Utf8Checker {
  /** An incomplete sequence at the end of the last chunk, and its absolute position. */
  private tail: Buffer | undefined;
  private tailPos = 0;

  /**
   * Checks `chunk`, whose first byte is at absolute position `pos`, and appends the absolute
   * positions of invalid bytes to `bad`.
   */
  check(chunk: Buffer, pos: number, bad: number[]): void {
    const cut = incompleteTailStart(chunk);
    let region = cut === chunk.length ? chunk : chunk.subarray(0, cut);
    let regionPos = pos;
    if (this.tail !== undefined) {
      region = Buffer.concat([this.tail, region]);
      regionPos = this.tailPos;
    }
    if (cut < chunk.length) {
      this.tail = Buffer.from(chunk.subarray(cut));
      this.tailPos = pos + cut;
    } else {
      this.tail = undefined;
    }
    if (region.length > 0 && !isUtf8(region)) findInvalid(region, regionPos, bad);
  }

  /** End of input: an incomplete sequence left over is invalid. */
  end(bad: number[]): void {
    if (this.tail !== undefined) findInvalid(this.tail, this.tailPos, bad);
    this.tail = undefined;
  }
}

/** Index where an incomplete multi-byte sequence at the end of `buf` starts (or `buf.length`). */
function incompleteTailStart(buf: Buffer): number {
  const n = buf.length;
  for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      if (n - i < need) return i;
    }
    return n;
  }
  return n;
}

/** Appends the absolute positions of the bytes of `buf` that are not valid UTF-8. */
function findInvalid(buf: Buffer, pos: number, bad: number[]): void {
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let len = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    }
    let ok = len > 0 && i + len <= n;
    if (ok) {
      const b1 = buf[i + 1];
      ok = b1 >= lo && b1 <= hi;
      for (let k = 2; ok && k < len; k++) ok = (buf[i + k] & 0xc0) === 0x80;
    }
    if (ok) {
      i += len;
    } else {
      bad.push(pos + i);
      i++;
    }
  }
}

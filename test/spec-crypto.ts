/**
 * The primitives the independent readers of the vector tests are written
 * with: `node:crypto` only, nothing of the library's. SPEC.md §1 (AES-256-GCM),
 * §3.3 and §12.2 (the HMAC-SHA-512 key schedule), §6 (XAES-256-GCM, C2SP),
 * §9.10 and §12.1 (the bindings' JSON text).
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';

/** HMAC-SHA-512 (RFC 2104). */
export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha512', key).update(data).digest());
}

/**
 * §3.3: `HKDF-Expand-SHA-512(PRK = key, info = label || 0x00 || parts..., L = 64)`, written as its
 * one HMAC call `HMAC-SHA-512(key, info || 0x01)`, split into bytes 0..32 and 32..64.
 */
export function expandOne(key: Uint8Array, label: string, ...parts: Uint8Array[]): { input: Uint8Array; keys: Uint8Array; first: Uint8Array; second: Uint8Array } {
  const input = new Uint8Array(Buffer.concat([Buffer.from(label, 'utf8'), Buffer.of(0x00), ...parts, Buffer.of(0x01)]));
  const keys = hmacSha512(key, input);
  return { input, keys, first: keys.subarray(0, 32), second: keys.subarray(32, 64) };
}

/** §12.1: a JSON string as the bindings write it (a lone surrogate as `\uXXXX`). */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    const pair = c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    if (pair) {
      out += s[i]! + s[i + 1]!;
      i++;
    } else if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0c) out += '\\f';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

/** §12.1: a record id or version in a binding: `null`, a JSON string, or decimal digits (`-0` as `0`). */
export function bindingValue(x: string | number | null): string {
  return x === null ? 'null' : typeof x === 'string' ? jsonString(x) : Object.is(x, -0) ? '0' : String(x);
}

/** §9.10: the record binding of a whole value, `"[" || id || "," || version || "]"` in UTF-8. */
export function specRecordBinding(id: string | number | null, version: string | number | null): Uint8Array {
  return new TextEncoder().encode(`[${bindingValue(id)},${bindingValue(version)}]`);
}

/** AES-GCM open of `ciphertext || tag` (16-byte tag), or undefined when the tag does not verify. */
export function gcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < 16) return undefined;
  const d = createDecipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]));
  } catch {
    return undefined;
  }
}

/** XAES-256-GCM's derivation (SPEC.md §6): `L`, the CMAC subkey `K1`, the subkey `Kx` and the GCM nonce `Nx` of a 24-byte nonce. */
export function xaesDerive(key: Uint8Array, nonce: Uint8Array): { L: Uint8Array; K1: Uint8Array; Kx: Uint8Array; Nx: Uint8Array } {
  const aes = (b: Uint8Array) => {
    const c = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    return new Uint8Array(Buffer.concat([c.update(b), c.final()]));
  };
  const L = aes(new Uint8Array(16));
  const K1 = new Uint8Array(16);
  for (let i = 0; i < 16; i++) K1[i] = ((L[i]! << 1) | (i < 15 ? L[i + 1]! >> 7 : 0)) & 0xff;
  if (L[0]! & 0x80) K1[15]! ^= 0x87;
  const M = (i: number) => new Uint8Array(Buffer.concat([Buffer.of(0, i, 0x58, 0), nonce.subarray(0, 12)])).map((b, j) => b ^ K1[j]!);
  return { L, K1, Kx: new Uint8Array(Buffer.concat([aes(M(1)), aes(M(2))])), Nx: nonce.subarray(12, 24) };
}

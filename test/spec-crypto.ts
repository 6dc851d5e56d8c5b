/**
 * The primitives the independent readers of the vector tests are written
 * with: `node:crypto` only, nothing of the library's. SPEC.md §1 (AES-256-GCM)
 * and §6 (XAES-256-GCM, C2SP).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

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

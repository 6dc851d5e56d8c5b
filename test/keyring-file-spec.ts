/**
 * A keyring file writer written from SPEC.md §7 alone (node:crypto only, no
 * import from src/): it builds files the library refuses to write (weak or
 * huge scrypt parameters, a `__proto__` alias, an old generation...) but that
 * are otherwise valid, so that only the rule under test can reject them.
 * Used by the keyring file tests and the keyring vector generator.
 */
import { createCipheriv, createHash, scryptSync } from 'node:crypto';

/** The JSON members of a keyring file, before `material` and `checksum`. */
export interface SpecFileJson {
  format: string;
  version: number;
  generation: number;
  protection: { kind: 'none' } | { kind: 'scrypt'; N: number; r: number; p: number; salt: string; nonce: string };
  keys: {
    keyId: string;
    state: string;
    description: string;
    createdAt: string;
    versions: { version: number; createdAt: string }[];
  }[];
  aliases: Record<string, string>;
}

/** §7 "Canonical metadata". `aliases` is read with Object.keys, so an own `__proto__` member counts. */
export function specMeta(f: SpecFileJson): Buffer {
  const protection =
    f.protection.kind === 'none'
      ? { kind: 'none' }
      : { kind: 'scrypt', N: f.protection.N, r: f.protection.r, p: f.protection.p, salt: f.protection.salt, nonce: f.protection.nonce };
  const keys = f.keys.map((k) => ({
    keyId: k.keyId,
    state: k.state,
    description: k.description,
    createdAt: k.createdAt,
    versions: k.versions.map((v) => ({ version: v.version, createdAt: v.createdAt })),
  }));
  const aliases = Object.keys(f.aliases)
    .sort()
    .map((a) => [a, f.aliases[a]]);
  return Buffer.from(JSON.stringify({ format: f.format, version: f.version, generation: f.generation, protection, keys, aliases }), 'utf8');
}

/** JSON text with every member of `f`, own `__proto__` included (JSON.stringify writes own members). */
function text(f: SpecFileJson, extra: Record<string, string>): string {
  return JSON.stringify({ ...f, ...extra }, null, 2) + '\n';
}

/** §7 protection `none`: material in clear and its checksum. */
export function specPlainFile(f: SpecFileJson, materialPlain: Uint8Array): string {
  if (f.protection.kind !== 'none') throw new Error('specPlainFile needs protection none');
  const sum = createHash('sha256').update('envelope-kit/keyring/v1/checksum').update(specMeta(f)).update(materialPlain).digest('base64');
  return text(f, { material: Buffer.from(materialPlain).toString('base64'), checksum: sum });
}

/** §7 the scrypt file key (node:crypto's scrypt, any parameters). */
export function specFileKey(passphrase: string | Uint8Array, salt: Uint8Array, N: number, r: number, p: number): Buffer {
  return scryptSync(passphrase, salt, 32, { N, r, p, maxmem: 256 * N * r * p + 64 * 1024 * 1024 });
}

/** §7 protection `scrypt`: material sealed with AES-256-GCM, metadata as associated data. */
export function specSealedFile(f: SpecFileJson, materialPlain: Uint8Array, passphrase: string | Uint8Array): string {
  if (f.protection.kind !== 'scrypt') throw new Error('specSealedFile needs protection scrypt');
  const { N, r, p } = f.protection;
  const salt = Buffer.from(f.protection.salt, 'base64');
  const nonce = Buffer.from(f.protection.nonce, 'base64');
  const key = specFileKey(passphrase, salt, N, r, p);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(specMeta(f));
  const sealed = Buffer.concat([c.update(materialPlain), c.final(), c.getAuthTag()]);
  return text(f, { material: sealed.toString('base64') });
}

/** A one-key file skeleton (generation 1, no aliases). */
export function specSkeleton(protection: SpecFileJson['protection'], keyId = 'vector-key-1'): SpecFileJson {
  return {
    format: 'envelope-kit/keyring',
    version: 2,
    generation: 1,
    protection,
    keys: [
      {
        keyId,
        state: 'Enabled',
        description: '',
        createdAt: '2025-01-01T00:00:00.000Z',
        versions: [{ version: 1, createdAt: '2025-01-01T00:00:00.000Z' }],
      },
    ],
    aliases: {},
  };
}

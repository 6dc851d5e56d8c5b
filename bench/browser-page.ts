/**
 * The page of `bench/browser.ts`, bundled with esbuild for headless Chromium: the published
 * entry point (dist/) with its default backend (WebCrypto above the threshold, @noble/ciphers
 * below) against the same calls given `aead: nobleAesGcm` (noble only), in the same page,
 * interleaved; and the raw primitives (`crypto.subtle` vs @noble/ciphers' gcm) by size, which
 * is what the threshold is read from. Sets `globalThis.__bench`.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { LocalKeyring, decrypt, decryptFields, decryptStream, encrypt, encryptFields, encryptStream, nobleAesGcm } from 'envelope-kit';

const now = () => performance.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function bytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

/** Per-operation ms (median over `samples`, each `batch` operations), the two contenders alternating. */
async function compare(samples: number, batch: number, a: () => Promise<unknown> | unknown, b: () => Promise<unknown> | unknown): Promise<[number, number]> {
  const ta: number[] = [];
  const tb: number[] = [];
  await a();
  await b();
  for (let s = 0; s < samples; s++) {
    for (const [f, t] of (s % 2 ? [[a, ta], [b, tb]] : [[b, tb], [a, ta]]) as [() => unknown, number[]][]) {
      const t0 = now();
      for (let i = 0; i < batch; i++) await f();
      t.push((now() - t0) / batch);
    }
  }
  return [median(ta), median(tb)];
}

/** One seal and one open of `size` bytes: WebCrypto (key import included) vs @noble/ciphers. */
async function primitive(size: number, samples: number, batch: number): Promise<{ web: number; noble: number }> {
  const key = bytes(32);
  const nonce = bytes(12);
  const aad = bytes(64);
  const pt = bytes(size);
  const [web, noble] = await compare(
    samples,
    batch,
    async () => {
      const k = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
      const c = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, pt);
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, c);
    },
    () => {
      const c = gcm(key, nonce, aad).encrypt(pt);
      gcm(key, nonce, aad).decrypt(c);
    },
  );
  return { web, noble };
}

const provider = new LocalKeyring();
const { keyId } = provider.createKey();

/** `encrypt` + `decrypt` of `size` bytes through the published API: default backend vs noble only. */
async function bulk(size: number, samples: number): Promise<{ fast: number; noble: number }> {
  const pt = bytes(size);
  const [fast, noble] = await compare(
    samples,
    1,
    async () => decrypt(await encrypt(pt, { provider, keyId }), { provider }),
    async () => decrypt(await encrypt(pt, { provider, keyId, aead: nobleAesGcm }), { provider, aead: nobleAesGcm }),
  );
  return { fast, noble };
}

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** `encryptStream` + `decryptStream` of `size` bytes in 64 KiB segments: default vs noble only. */
async function stream(size: number, samples: number): Promise<{ fast: number; noble: number }> {
  const blob = new Blob([bytes(size)]);
  const [fast, noble] = await compare(
    samples,
    1,
    async () => drain(new Blob([await drain(blob.stream().pipeThrough(encryptStream({ provider, keyId })))]).stream().pipeThrough(decryptStream({ provider }))),
    async () =>
      drain(
        new Blob([await drain(blob.stream().pipeThrough(encryptStream({ provider, keyId, aead: nobleAesGcm })))]).stream().pipeThrough(decryptStream({ provider, aead: nobleAesGcm })),
      ),
  );
  return { fast, noble };
}

/** `encryptFields` + `decryptFields` of one record with 4 fields, per record: default vs noble only. */
async function fields(samples: number, batch: number): Promise<{ fast: number; noble: number }> {
  const record = { id: 1, name: 'Ada Lovelace', ssn: '078-05-1120', email: 'ada@example.com', phone: '+44 20 7946 0958', address: { street: '12 St James Sq', city: 'London' } };
  const list = ['ssn', 'email', 'phone', 'address.street'] as const;
  const [fast, noble] = await compare(
    samples,
    batch,
    async () => decryptFields(await encryptFields(record, { provider, keyId, fields: list, recordId: 1 }), { provider, fields: list, recordId: 1 }),
    async () => decryptFields(await encryptFields(record, { provider, keyId, fields: list, recordId: 1, aead: nobleAesGcm }), { provider, fields: list, recordId: 1, aead: nobleAesGcm }),
  );
  return { fast, noble };
}

(globalThis as { __bench?: unknown }).__bench = { primitive, bulk, stream, fields, userAgent: navigator.userAgent };

/**
 * What `import('envelope-kit')` loads on Node: no @noble/ciphers and no
 * @noble/hashes SHA-2 (their tables and constants are built when their modules
 * load, for work `node:crypto` does); they come on first use, and give the same
 * bytes. Checked in fresh processes on the built package (`npm test` builds dist/).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

/**
 * The @noble files a fresh process has loaded after running `code`: every ES module resolved (an
 * off-thread resolve hook, `module.register`, reporting through a MessagePort) and every module
 * `require` loaded (`require.cache`, which also holds ES modules loaded by `require`).
 */
async function nobleLoaded(code: string): Promise<string[]> {
  const hooks = 'let port; export function initialize(d) { port = d.port; } export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }';
  const probe = `
    const seen = new Set();
    const { register, createRequire } = await import('node:module');
    const { MessageChannel } = await import('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (u) => seen.add(u));
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), { data: { port: port2 }, transferList: [port2] });
    ${code};
    // Let the hook thread's messages arrive.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
    for (const k of Object.keys(createRequire(process.cwd() + '/').cache)) seen.add(k);
    port1.close();
    process.stdout.write(JSON.stringify([...seen].filter((u) => u.includes('/@noble/')).map((u) => u.replace(/^.*node_modules[/]/, '')).sort()));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, timeout: 20_000 });
  return JSON.parse(stdout) as string[];
}

describe('the Node import path', () => {
  it('import(envelope-kit) loads no @noble/ciphers and no @noble/hashes SHA-2 or scrypt', async () => {
    const loaded = await nobleLoaded("const m = await import('envelope-kit'); if (typeof m.encrypt !== 'function') throw new Error('no encrypt')");
    expect(loaded.filter((f) => f.startsWith('@noble/ciphers/'))).toEqual([]);
    expect(loaded.filter((f) => /@noble\/hashes\/(sha2|scrypt|_md|_u64)\.js$/.test(f))).toEqual([]);
  });

  it('require(envelope-kit) loads no @noble/ciphers and no @noble/hashes SHA-2', async () => {
    const loaded = await nobleLoaded("(await import('node:module')).createRequire(process.cwd() + '/')('envelope-kit')");
    expect(loaded.filter((f) => f.startsWith('@noble/ciphers/') || /@noble\/hashes\/(sha2|scrypt)\.js$/.test(f))).toEqual([]);
  });

  it('nobleAesGcm, a blind index and the key schedule on a noble backend load them on first use, with the same bytes as node:crypto', async () => {
    const code = `
      const m = await import('envelope-kit');
      const key = new Uint8Array(32).fill(7), nonce = new Uint8Array(12).fill(1), aad = new Uint8Array(3), pt = new Uint8Array(40).fill(9);
      const a = new Uint8Array(56), b = new Uint8Array(56);
      m.nobleAesGcm.seal(key, nonce, aad, pt, a);
      (await import('envelope-kit/node')).nodeAesGcm.seal(key, nonce, aad, pt, b);
      if (Buffer.compare(a, b) !== 0) throw new Error('the backends differ');
      const kr = new m.LocalKeyring(); const { keyId } = kr.createKey();
      const env = await m.encrypt(pt, { provider: kr, keyId, aead: m.nobleAesGcm });
      const back = await m.decrypt(env, { providers: [kr] });
      if (Buffer.compare(back.plaintext, pt) !== 0) throw new Error('round trip');
    `;
    const loaded = await nobleLoaded(code);
    expect(loaded).toContain('@noble/ciphers/aes.js');
    expect(loaded).toContain('@noble/hashes/sha2.js');
  });
});

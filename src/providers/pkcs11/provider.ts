/**
 * The PKCS#11 provider: master keys are non-extractable AES keys on a token (an HSM, or
 * SoftHSM2), data keys are wrapped with `CKM_AES_GCM` (or RFC 5649 key wrap) inside the token.
 *
 * - A master key is named (`keyId`, e.g. `payments`); each of its versions is a token object
 *   `CKO_SECRET_KEY` / `CKK_AES` labelled `name/v<version>` (`CKA_LABEL`, and the same bytes as
 *   `CKA_ID` when {@link Pkcs11Provider.createKey} makes it), `CKA_SENSITIVE` true and
 *   `CKA_EXTRACTABLE` false (a key found otherwise is refused). New blobs use the newest version;
 *   a blob names its version, and `decrypt` uses that one.
 * - Blob layout: see `blob.ts` (format version `0x01`, scheme, key name, key version, data-key
 *   length, then IV || ciphertext || tag, or the RFC 5649 output).
 * - A disabled key is one whose use attribute (`CKA_ENCRYPT`/`CKA_DECRYPT`, or `CKA_WRAP`/`CKA_UNWRAP`
 *   for RFC 5649) is false: {@link KeyDisabledError}. {@link Pkcs11Provider.disableKey} sets them.
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { inspect } from 'node:util';
import { type CheckedContext } from '../../core/context.js';
import { DecryptionFailedError, InvalidParameterError, KeyDisabledError, KeyNotFoundError } from '../../core/errors.js';
import {
  type BlobDescription,
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type EncryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  type ReEncryptRequest,
  type WrappedKey,
  checkDecryptRequest,
  checkEncryptRequest,
  checkGenerateDataKeyRequest,
  checkKeyId,
  checkReEncryptRequest,
  isProviderId,
} from '../../core/provider.js';
import { constantTimeEqual, isBytes, wipe } from '../../internal/bytes.js';
import { readOptions } from '../../internal/options.js';
import { randomBytes } from '../../internal/random.js';
import { CK, type Pkcs11Attribute, type Pkcs11Binding, type Pkcs11Handle, type Pkcs11Module, isPkcs11Binding, loadPkcs11Binding } from './binding.js';
import {
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  KEY_NAME_RE,
  KWP_DIGEST_BYTES,
  MAX_KEY_VERSION,
  type Pkcs11BlobHeader,
  SCHEME_GCM,
  SCHEME_KWP,
  encodeHeader,
  gcmAad,
  keyLabel,
  kwpContextDigest,
  kwpInputLength,
  kwpOutputLength,
  parseKeyLabel,
  readPkcs11Blob,
} from './blob.js';
import { CKR, NOT_A_DECRYPTION_FAILURE, Pkcs11ProviderError, ckrOf, pkcs11Failure } from './errors.js';
import { SessionPool } from './session-pool.js';

/** Provider id the PKCS#11 provider writes into envelopes unless `providerId` says otherwise. */
export const PKCS11_PROVIDER_ID = 'pkcs11';

/** Where Debian's `softhsm2` package puts the SoftHSM2 module. */
export const SOFTHSM2_DEBIAN_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** Bounds and defaults of {@link Pkcs11ProviderOptions}. */
export const PKCS11_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Sessions a provider opens unless `sessions` says otherwise. */
  defaultSessions: 4,
  /** Most sessions a provider opens. */
  maxSessions: 64,
  /** Largest data key (`numberOfBytes`) and `encrypt` plaintext. */
  maxDataKeyBytes: 1024,
  /** Bytes of a key name (`keyId`). */
  maxKeyNameBytes: 64,
});

/** How data keys are wrapped: `gcm` (`CKM_AES_GCM`, the default) or `kwp` (RFC 5649). */
export type Pkcs11WrapScheme = 'gcm' | 'kwp';

/** Where data keys come from: the process's CSPRNG (`local`, the default) or `C_GenerateRandom` on the token (`token`). */
export type Pkcs11DataKeySource = 'local' | 'token';

/** Options of the {@link Pkcs11Provider} constructor. */
export interface Pkcs11ProviderOptions {
  /** Path of the PKCS#11 module (a shared library), e.g. {@link SOFTHSM2_DEBIAN_MODULE}. */
  readonly module: string;
  /** The token's label (`CKA_LABEL` of its token info, trailing blanks ignored). */
  readonly tokenLabel?: string;
  /** The token's serial number; with `tokenLabel`, both must match. Without either, the only initialised token is used. */
  readonly tokenSerial?: string;
  /** The user PIN. A string cannot be wiped: prefer `pinEnv`. Never logged or shown. */
  readonly pin?: string;
  /** Name of the environment variable holding the user PIN, read when the provider opens (when `pin` is not given). */
  readonly pinEnv?: string;
  /** Most sessions open at once, 1..64 (default 4): that many calls run in parallel, the rest wait. */
  readonly sessions?: number;
  /** How data keys are wrapped (default `gcm`). Blobs of either scheme always decrypt. */
  readonly wrap?: Pkcs11WrapScheme;
  /**
   * The RFC 5649 mechanism number: `0x210a` (`CKM_AES_KEY_WRAP_PAD`, SoftHSM2) or `0x210b`
   * (`CKM_AES_KEY_WRAP_KWP`, PKCS#11 v3.0). Default: whichever the token lists, `0x210b` first.
   */
  readonly kwpMechanism?: number;
  /** Where data keys come from (default `local`). */
  readonly dataKeySource?: Pkcs11DataKeySource;
  /** The `pkcs11js` module, when the caller loads it; by default it is imported on first use. */
  readonly binding?: Pkcs11Binding;
  /** Provider id written into envelopes (default `pkcs11`). */
  readonly providerId?: string;
}

/** What {@link Pkcs11Provider.createKey} and {@link Pkcs11Provider.rotateKey} answer. */
export interface Pkcs11KeyVersion {
  /** The key name. */
  readonly keyId: string;
  /** The new version, as a string (as `keyVersion` of the provider's answers). */
  readonly keyVersion: string;
  /** The token object's label, `name/v<version>`. */
  readonly label: string;
}

/** Use of a master key, and the attribute that allows it. */
type KeyUse = 'encrypt' | 'decrypt' | 'wrap' | 'unwrap';
const USE_ATTRIBUTE: Readonly<Record<KeyUse, number>> = {
  encrypt: CK.CKA_ENCRYPT,
  decrypt: CK.CKA_DECRYPT,
  wrap: CK.CKA_WRAP,
  unwrap: CK.CKA_UNWRAP,
};
const USE_NAME: Readonly<Record<KeyUse, string>> = { encrypt: 'CKA_ENCRYPT', decrypt: 'CKA_DECRYPT', wrap: 'CKA_WRAP', unwrap: 'CKA_UNWRAP' };

/** One loaded module, shared by every provider of the process over the same binding and path. */
interface LoadedModule {
  readonly lib: Pkcs11Module;
  refs: number;
  /** False when the library was initialised by someone else (`CKR_CRYPTOKI_ALREADY_INITIALIZED`): never finalised here. */
  readonly owned: boolean;
}
const LOADED = new WeakMap<Pkcs11Binding, Map<string, LoadedModule>>();

interface OpenState {
  readonly binding: Pkcs11Binding;
  readonly path: string;
  readonly loaded: LoadedModule;
  readonly lib: Pkcs11Module;
  readonly pool: SessionPool;
  readonly mechanisms: ReadonlySet<number>;
  readonly kwpMechanism: number | undefined;
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function bool(v: Uint8Array | undefined): boolean | undefined {
  return v === undefined || v.length === 0 ? undefined : v[0] !== 0;
}

/** A Buffer of the binding's own holding a copy of `bytes` (allocated, never from Node's shared pool). */
function buf(bytes: Uint8Array): Buffer {
  const b = Buffer.alloc(bytes.length);
  b.set(bytes);
  return b;
}

/**
 * A {@link KeyProvider} over a PKCS#11 token through the `pkcs11js` binding (an optional peer
 * dependency, loaded on first use).
 *
 * Data keys are drawn from the CSPRNG (or the token's RNG: `dataKeySource: 'token'`) and wrapped
 * inside the token under the newest version of the named master key: with `CKM_AES_GCM` (a fresh
 * random 12-byte IV, 128-bit tag, associated data = blob header || canonical context), or with
 * RFC 5649 key wrap (`wrap: 'kwp'`), where the digest of header and context is wrapped with the
 * data key and compared on unwrap. The blob layout is in the `blob.ts` module documentation and the
 * README ("PKCS#11 HSMs").
 *
 * The provider opens (loads the module, finds the token, logs in, opens its first session) on
 * its first call, or at once with {@link Pkcs11Provider.open}. A failed opening is kept: every
 * later call throws the same error (a wrong PIN is never tried twice on its own, which would count
 * towards a token's lockout); make a new provider to try again. {@link Pkcs11Provider.close}
 * finalises the module once no other provider of the process uses it.
 *
 * Errors: {@link KeyNotFoundError} (no version of the key on the token),
 * {@link KeyDisabledError} (its use attribute is false), {@link DecryptionFailedError} (a blob
 * not of this format, altered, or bound to another context), {@link InvalidParameterError} (bad
 * options or requests), {@link Pkcs11ProviderError} (`ERR_PROVIDER`; see its `failure`: missing
 * binding or module file, token not found, wrong or locked PIN, missing mechanism, an extractable
 * or ambiguous key, closed, or another `CKR_*` value).
 *
 * @example
 * ```ts
 * import { encrypt, decrypt } from 'envelope-kit';
 * import { Pkcs11Provider, SOFTHSM2_DEBIAN_MODULE } from 'envelope-kit/pkcs11';
 * const hsm = await Pkcs11Provider.open({ module: SOFTHSM2_DEBIAN_MODULE, tokenLabel: 'app', pinEnv: 'HSM_PIN' });
 * try {
 *   const env = await encrypt(new TextEncoder().encode('hi'), { provider: hsm, keyId: 'payments' });
 *   const { plaintext } = await decrypt(env, { provider: hsm });
 * } finally {
 *   await hsm.close();
 * }
 * ```
 */
export class Pkcs11Provider implements KeyProvider {
  /** `pkcs11` unless the options say otherwise. */
  readonly providerId: string;
  readonly #module: string;
  readonly #tokenLabel: string | undefined;
  readonly #tokenSerial: string | undefined;
  readonly #pin: string | undefined;
  readonly #pinEnv: string | undefined;
  readonly #sessions: number;
  readonly #scheme: Pkcs11WrapScheme;
  readonly #kwpOption: number | undefined;
  readonly #dataKeySource: Pkcs11DataKeySource;
  readonly #bindingOption: Pkcs11Binding | undefined;
  #ready: Promise<OpenState> | undefined;
  #closing: Promise<void> | undefined;
  /** Calls started and not yet settled: `close()` waits for them. */
  readonly #inflight = new Set<Promise<unknown>>();
  /** Newest version seen of each key name; a call checks whether a newer one appeared since. */
  readonly #newest = new Map<string, number>();
  /** Key management calls of this provider, one after another (so two rotations never make one label twice). */
  #adminQueue: Promise<unknown> = Promise.resolve();

  /**
   * Check the options; nothing is loaded until the first call (or {@link Pkcs11Provider.open}).
   * @throws InvalidParameterError for bad options.
   */
  constructor(options: Pkcs11ProviderOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidParameterError('Pkcs11Provider options must be an object with a "module" path');
    const o = readOptions(
      options,
      ['module', 'tokenLabel', 'tokenSerial', 'pin', 'pinEnv', 'sessions', 'wrap', 'kwpMechanism', 'dataKeySource', 'binding', 'providerId'],
      'Pkcs11Provider options',
    );
    if (typeof o.module !== 'string' || o.module.length === 0 || o.module.length > 4096 || o.module.includes('\0')) {
      throw new InvalidParameterError('"module" must be the path of a PKCS#11 module');
    }
    for (const k of ['tokenLabel', 'tokenSerial'] as const) {
      const v = o[k];
      if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 32)) throw new InvalidParameterError(`"${k}" must be a string of 1 to 32 characters`);
    }
    if (o.pin !== undefined && (typeof o.pin !== 'string' || o.pin.length === 0 || o.pin.length > 256)) {
      throw new InvalidParameterError('"pin" must be a non-empty string of at most 256 characters');
    }
    if (o.pinEnv !== undefined && (typeof o.pinEnv !== 'string' || !ENV_NAME_RE.test(o.pinEnv))) {
      throw new InvalidParameterError('"pinEnv" must be the name of an environment variable');
    }
    const sessions = o.sessions ?? PKCS11_LIMITS.defaultSessions;
    if (typeof sessions !== 'number' || !Number.isInteger(sessions) || sessions < 1 || sessions > PKCS11_LIMITS.maxSessions) {
      throw new InvalidParameterError(`"sessions" must be an integer from 1 to ${PKCS11_LIMITS.maxSessions}`);
    }
    const wrap = o.wrap ?? 'gcm';
    if (wrap !== 'gcm' && wrap !== 'kwp') throw new InvalidParameterError('"wrap" must be "gcm" or "kwp"');
    if (o.kwpMechanism !== undefined && o.kwpMechanism !== CK.CKM_AES_KEY_WRAP_PAD && o.kwpMechanism !== CK.CKM_AES_KEY_WRAP_KWP) {
      throw new InvalidParameterError('"kwpMechanism" must be 0x210a (CKM_AES_KEY_WRAP_PAD) or 0x210b (CKM_AES_KEY_WRAP_KWP)');
    }
    const source = o.dataKeySource ?? 'local';
    if (source !== 'local' && source !== 'token') throw new InvalidParameterError('"dataKeySource" must be "local" or "token"');
    if (o.binding !== undefined && !isPkcs11Binding(o.binding)) throw new InvalidParameterError('"binding" must be the pkcs11js module');
    const providerId = o.providerId ?? PKCS11_PROVIDER_ID;
    if (!isProviderId(providerId)) throw new InvalidParameterError('"providerId" must be 1 to 64 of a-z 0-9 . _ -');
    this.providerId = providerId;
    this.#module = o.module;
    this.#tokenLabel = o.tokenLabel as string | undefined;
    this.#tokenSerial = o.tokenSerial as string | undefined;
    this.#pin = o.pin as string | undefined;
    this.#pinEnv = o.pinEnv as string | undefined;
    this.#sessions = sessions;
    this.#scheme = wrap;
    this.#kwpOption = o.kwpMechanism as number | undefined;
    this.#dataKeySource = source;
    this.#bindingOption = o.binding as Pkcs11Binding | undefined;
  }

  /**
   * Make a provider and open it at once: module loaded, token found, user logged in.
   * @throws InvalidParameterError for bad options; Pkcs11ProviderError when opening fails.
   */
  static async open(options: Pkcs11ProviderOptions): Promise<Pkcs11Provider> {
    const p = new Pkcs11Provider(options);
    await p.#call(async () => undefined);
    return p;
  }

  /**
   * Run `fn` with the open state: refused once `close()` was called; counted in flight (so that
   * `close()` waits for it) from this moment on.
   */
  #call<T>(fn: (st: OpenState) => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(new Pkcs11ProviderError('closed', 'the PKCS#11 provider is closed'));
    this.#ready ??= this.#openNow();
    const p = this.#ready.then(fn);
    this.#inflight.add(p);
    p.then(
      () => this.#inflight.delete(p),
      () => this.#inflight.delete(p),
    );
    return p;
  }

  async #openNow(): Promise<OpenState> {
    const binding = this.#bindingOption ?? (await loadPkcs11Binding());
    const path = this.#module;
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new Pkcs11ProviderError('module-not-found', `no PKCS#11 module file at ${JSON.stringify(path)}`);
    }
    let byPath = LOADED.get(binding);
    if (byPath === undefined) LOADED.set(binding, (byPath = new Map()));
    let loaded = byPath.get(path);
    if (loaded === undefined) {
      const lib = new binding.PKCS11();
      try {
        lib.load(path);
      } catch (e) {
        throw new Pkcs11ProviderError('module-load-failed', `the file at ${JSON.stringify(path)} could not be loaded as a PKCS#11 module`, { cause: e });
      }
      let owned = true;
      try {
        lib.C_Initialize({ flags: CK.CKF_OS_LOCKING_OK });
      } catch (e) {
        if (ckrOf(e) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw pkcs11Failure('C_Initialize', e);
        owned = false;
      }
      loaded = { lib, refs: 0, owned };
      byPath.set(path, loaded);
    }
    loaded.refs++;
    const lib = loaded.lib;
    let first: Pkcs11Handle | undefined;
    try {
      const slot = this.#findSlot(lib);
      const mechanisms = new Set(lib.C_GetMechanismList(slot));
      const kwpMechanism =
        this.#kwpOption ?? (mechanisms.has(CK.CKM_AES_KEY_WRAP_KWP) ? CK.CKM_AES_KEY_WRAP_KWP : mechanisms.has(CK.CKM_AES_KEY_WRAP_PAD) ? CK.CKM_AES_KEY_WRAP_PAD : undefined);
      if (this.#scheme === 'gcm' && !mechanisms.has(CK.CKM_AES_GCM)) {
        throw new Pkcs11ProviderError('mechanism-unsupported', 'the token does not offer CKM_AES_GCM');
      }
      if (this.#scheme === 'kwp' && (kwpMechanism === undefined || !mechanisms.has(kwpMechanism))) {
        throw new Pkcs11ProviderError('mechanism-unsupported', 'the token offers neither CKM_AES_KEY_WRAP_PAD (0x210a) nor CKM_AES_KEY_WRAP_KWP (0x210b)');
      }
      const info = lib.C_GetTokenInfo(slot);
      if ((info.flags & CK.CKF_USER_PIN_LOCKED) !== 0) throw new Pkcs11ProviderError('pin-locked', 'the token says its user PIN is locked (CKF_USER_PIN_LOCKED)');
      const pin = this.#pin ?? (this.#pinEnv !== undefined ? process.env[this.#pinEnv] : undefined);
      if (pin === undefined || pin.length === 0) {
        throw new Pkcs11ProviderError(
          'pin-missing',
          this.#pinEnv !== undefined ? `the environment variable ${this.#pinEnv} holds no PIN` : 'no PIN given: set "pin" or "pinEnv"',
        );
      }
      const flags = CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION;
      // Every session the pool opens logs in: closing the last session of the process to a token
      // logs it out (PKCS#11 v2.40 §5.6), so a session opened after the pool closed a lost one
      // would otherwise see no private object.
      const openSession = (): Pkcs11Handle => {
        let s: Pkcs11Handle;
        try {
          s = lib.C_OpenSession(slot, flags);
        } catch (e) {
          throw pkcs11Failure('C_OpenSession', e);
        }
        try {
          lib.C_Login(s, CK.CKU_USER, pin);
        } catch (e) {
          // Logged in already: by another session of this process (login is per application).
          if (ckrOf(e) !== CKR.USER_ALREADY_LOGGED_IN) {
            try {
              lib.C_CloseSession(s);
            } catch {
              // best effort
            }
            throw pkcs11Failure('C_Login', e);
          }
        }
        return s;
      };
      first = openSession();
      const pool = new SessionPool(openSession, (s) => lib.C_CloseSession(s), this.#sessions, first);
      return { binding, path, loaded, lib, pool, mechanisms, kwpMechanism };
    } catch (e) {
      if (first !== undefined) {
        try {
          lib.C_CloseSession(first);
        } catch {
          // best effort
        }
      }
      this.#unref(binding, path, loaded);
      throw e;
    }
  }

  #unref(binding: Pkcs11Binding, path: string, loaded: LoadedModule): void {
    loaded.refs--;
    if (loaded.refs > 0) return;
    LOADED.get(binding)?.delete(path);
    if (!loaded.owned) return;
    try {
      loaded.lib.C_Finalize();
    } catch {
      // Finalising is best effort.
    }
  }

  #findSlot(lib: Pkcs11Module): Pkcs11Handle {
    let slots: Pkcs11Handle[];
    try {
      slots = lib.C_GetSlotList(true);
    } catch (e) {
      throw pkcs11Failure('C_GetSlotList', e);
    }
    const matches: Pkcs11Handle[] = [];
    for (const slot of slots) {
      let info;
      try {
        info = lib.C_GetTokenInfo(slot);
      } catch {
        continue;
      }
      if ((info.flags & CK.CKF_TOKEN_INITIALIZED) === 0) continue;
      if (this.#tokenLabel !== undefined && info.label.trimEnd() !== this.#tokenLabel) continue;
      if (this.#tokenSerial !== undefined && info.serialNumber.trimEnd() !== this.#tokenSerial) continue;
      matches.push(slot);
    }
    const wanted =
      this.#tokenLabel !== undefined || this.#tokenSerial !== undefined
        ? `a token with ${[this.#tokenLabel !== undefined ? `label ${JSON.stringify(this.#tokenLabel)}` : '', this.#tokenSerial !== undefined ? `serial ${JSON.stringify(this.#tokenSerial)}` : ''].filter(Boolean).join(' and ')}`
        : 'an initialised token';
    if (matches.length === 0) throw new Pkcs11ProviderError('token-not-found', `no ${wanted} is present`);
    if (matches.length > 1) throw new Pkcs11ProviderError('token-not-found', `more than one slot holds ${wanted}: give "tokenLabel" or "tokenSerial"`);
    return matches[0]!;
  }

  // ---- objects on the token ----

  /** The one AES secret key labelled `label`, or `undefined`. @throws Pkcs11ProviderError `key-ambiguous` */
  #findLabel(lib: Pkcs11Module, s: Pkcs11Handle, label: string): Pkcs11Handle | undefined {
    let found: Pkcs11Handle[];
    try {
      lib.C_FindObjectsInit(s, [
        { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
        { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
        { type: CK.CKA_TOKEN, value: true },
        { type: CK.CKA_LABEL, value: label },
      ]);
      try {
        found = lib.C_FindObjects(s, 2);
      } finally {
        lib.C_FindObjectsFinal(s);
      }
    } catch (e) {
      throw pkcs11Failure('C_FindObjects', e);
    }
    if (found.length > 1) throw new Pkcs11ProviderError('key-ambiguous', `more than one key on the token is labelled ${JSON.stringify(label)}`);
    return found[0];
  }

  /** Every version of key `name` on the token, ascending. */
  #versionsOf(lib: Pkcs11Module, s: Pkcs11Handle, name: string): number[] {
    const versions: number[] = [];
    try {
      lib.C_FindObjectsInit(s, [
        { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
        { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
        { type: CK.CKA_TOKEN, value: true },
      ]);
      const handles: Pkcs11Handle[] = [];
      try {
        for (;;) {
          const batch = lib.C_FindObjects(s, 256);
          if (batch.length === 0) break;
          handles.push(...batch);
        }
      } finally {
        lib.C_FindObjectsFinal(s);
      }
      for (const h of handles) {
        const label = lib.C_GetAttributeValue(s, h, [{ type: CK.CKA_LABEL }])[0]?.value;
        const parsed = label !== undefined ? parseKeyLabel(Buffer.from(label).toString('utf8')) : undefined;
        if (parsed !== undefined && parsed.name === name) versions.push(parsed.version);
      }
    } catch (e) {
      throw pkcs11Failure('C_FindObjects', e);
    }
    return versions.sort((a, b) => a - b);
  }

  /**
   * Check a found master key before use: non-extractable and sensitive (else refused), and its use
   * attribute true (else disabled).
   */
  #checkKey(lib: Pkcs11Module, s: Pkcs11Handle, handle: Pkcs11Handle, label: string, use: KeyUse): void {
    let attrs: { type: number; value: Uint8Array }[];
    try {
      attrs = lib.C_GetAttributeValue(s, handle, [{ type: CK.CKA_EXTRACTABLE }, { type: CK.CKA_SENSITIVE }, { type: USE_ATTRIBUTE[use] }]);
    } catch (e) {
      throw pkcs11Failure('C_GetAttributeValue', e);
    }
    const [extractable, sensitive, allowed] = attrs.map((a) => bool(a.value));
    if (extractable !== false || sensitive !== true) {
      throw new Pkcs11ProviderError('key-extractable', `key ${label} is extractable or not sensitive: refused (CKA_EXTRACTABLE must be false, CKA_SENSITIVE true)`);
    }
    if (allowed !== true) throw new KeyDisabledError(`key ${label} is disabled (${USE_NAME[use]} is false)`);
  }

  /** The newest version of key `name` and its handle, checked for `use`. @throws KeyNotFoundError */
  #newestKey(lib: Pkcs11Module, s: Pkcs11Handle, name: string, use: KeyUse): { version: number; handle: Pkcs11Handle } {
    let version = this.#newest.get(name);
    let handle = version !== undefined ? this.#findLabel(lib, s, keyLabel(name, version)) : undefined;
    if (version === undefined || handle === undefined) {
      const versions = this.#versionsOf(lib, s, name);
      version = versions[versions.length - 1];
      if (version === undefined) throw new KeyNotFoundError(`key not found: ${name}`);
      handle = this.#findLabel(lib, s, keyLabel(name, version));
      if (handle === undefined) throw new KeyNotFoundError(`key not found: ${name}`);
    }
    // A newer version may have been made since (by another process, too).
    while (version < MAX_KEY_VERSION) {
      const next = this.#findLabel(lib, s, keyLabel(name, version + 1));
      if (next === undefined) break;
      version++;
      handle = next;
    }
    this.#newest.set(name, version);
    this.#checkKey(lib, s, handle, keyLabel(name, version), use);
    return { version, handle };
  }

  /** Key name of a request: a name that cannot be on the token is not found. */
  #name(keyId: string): string {
    if (!KEY_NAME_RE.test(keyId)) throw new KeyNotFoundError(`key not found: ${keyId.length > 80 ? `${keyId.slice(0, 80)}...` : keyId}`);
    return keyId;
  }

  // ---- wrapping ----

  /** Wrap `dataKey` (the caller keeps and wipes it) under the newest version of `name`. */
  async #wrap(st: OpenState, name: string, dataKey: Uint8Array, context: CheckedContext): Promise<WrappedKey> {
    return st.pool.use(async (s) => {
      const lib = st.lib;
      const n = dataKey.length;
      if (this.#scheme === 'gcm') {
        const { version, handle } = this.#newestKey(lib, s, name, 'encrypt');
        const header = encodeHeader(SCHEME_GCM, name, version, n);
        const iv = buf(randomBytes(GCM_IV_BYTES));
        const parameter = { type: st.binding.CK_PARAMS_GCM, iv, ivBits: GCM_IV_BYTES * 8, aad: buf(gcmAad(header, context)), tagBits: GCM_TAG_BYTES * 8 };
        const input = buf(dataKey);
        let out: Uint8Array;
        try {
          try {
            lib.C_EncryptInit(s, { mechanism: CK.CKM_AES_GCM, parameter }, handle);
          } catch (e) {
            if (ckrOf(e) === CKR.KEY_FUNCTION_NOT_PERMITTED) throw new KeyDisabledError(`key ${keyLabel(name, version)} is disabled`, { cause: e });
            throw pkcs11Failure('C_EncryptInit', e);
          }
          out = await lib.C_EncryptAsync(s, input, Buffer.alloc(n + GCM_TAG_BYTES)).catch((e: unknown) => {
            throw pkcs11Failure('C_Encrypt', e);
          });
        } finally {
          input.fill(0);
        }
        // pkcs11js hands the module this Buffer's own memory as `pIv`: a module that makes the IV
        // itself writes it there, so the IV read back from the parameter is the one stored.
        if (out.length !== n + GCM_TAG_BYTES || parameter.iv.length !== GCM_IV_BYTES) {
          throw new Pkcs11ProviderError('pkcs11', 'C_Encrypt returned a ciphertext of the wrong length');
        }
        const blob = new Uint8Array(header.length + GCM_IV_BYTES + out.length);
        blob.set(header, 0);
        blob.set(parameter.iv, header.length);
        blob.set(out, header.length + GCM_IV_BYTES);
        return { keyId: name, ciphertextBlob: blob, keyVersion: String(version) };
      }
      const mechanism = st.kwpMechanism!;
      const { version, handle } = this.#newestKey(lib, s, name, 'wrap');
      const header = encodeHeader(SCHEME_KWP, name, version, n);
      // digest || data key || zero bytes up to a multiple of 8 (blob.ts: every RFC 5649 implementation then agrees)
      const value = Buffer.alloc(kwpInputLength(n));
      value.set(kwpContextDigest(header, context), 0);
      value.set(dataKey, KWP_DIGEST_BYTES);
      let obj: Pkcs11Handle;
      try {
        obj = lib.C_CreateObject(s, [
          { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
          { type: CK.CKA_KEY_TYPE, value: CK.CKK_GENERIC_SECRET },
          { type: CK.CKA_TOKEN, value: false },
          { type: CK.CKA_PRIVATE, value: true },
          { type: CK.CKA_SENSITIVE, value: false },
          { type: CK.CKA_EXTRACTABLE, value: true },
          { type: CK.CKA_VALUE, value },
        ]);
      } catch (e) {
        throw pkcs11Failure('C_CreateObject', e);
      } finally {
        value.fill(0);
      }
      let wrapped: Uint8Array;
      try {
        wrapped = await lib.C_WrapKeyAsync(s, { mechanism }, handle, obj, Buffer.alloc(kwpOutputLength(n))).catch((e: unknown) => {
          if (ckrOf(e) === CKR.KEY_FUNCTION_NOT_PERMITTED) throw new KeyDisabledError(`key ${keyLabel(name, version)} is disabled`, { cause: e });
          throw pkcs11Failure('C_WrapKey', e);
        });
      } finally {
        this.#destroy(lib, s, obj);
      }
      if (wrapped.length !== kwpOutputLength(n)) throw new Pkcs11ProviderError('pkcs11', 'C_WrapKey returned a blob of the wrong length');
      const blob = new Uint8Array(header.length + wrapped.length);
      blob.set(header, 0);
      blob.set(wrapped, header.length);
      return { keyId: name, ciphertextBlob: blob, keyVersion: String(version) };
    });
  }

  #destroy(lib: Pkcs11Module, s: Pkcs11Handle, obj: Pkcs11Handle): void {
    try {
      lib.C_DestroyObject(s, obj);
    } catch {
      // A session object goes with its session at the latest.
    }
  }

  /** Unwrap a blob bound to `context`; the answer's plaintext belongs to the caller. */
  async #unwrap(st: OpenState, blob: Uint8Array, context: CheckedContext): Promise<DecryptedDataKey> {
    const h = readPkcs11Blob(blob);
    if (h === undefined) throw new DecryptionFailedError();
    return st.pool.use(async (s) => {
      const lib = st.lib;
      const label = keyLabel(h.name, h.version);
      const handle = this.#findLabel(lib, s, label);
      if (handle === undefined) {
        // No version of that name at all: the key is not there. Another version only: this blob is not one of its.
        if (this.#versionsOf(lib, s, h.name).length === 0) throw new KeyNotFoundError(`key not found: ${h.name}`);
        throw new DecryptionFailedError();
      }
      const plaintext = h.scheme === SCHEME_GCM ? await this.#openGcm(st, s, handle, label, h, context) : await this.#openKwp(st, s, handle, label, h, context);
      return { keyId: h.name, plaintext, keyVersion: String(h.version) };
    });
  }

  /** A failure of the decrypting call itself: the bytes (or context) are wrong, unless the session or token failed. */
  #decryptFailure(what: string, e: unknown): Error {
    const code = ckrOf(e);
    if (code === CKR.KEY_FUNCTION_NOT_PERMITTED) return new KeyDisabledError('the key is disabled', { cause: e });
    if (code !== undefined && NOT_A_DECRYPTION_FAILURE.has(code)) return pkcs11Failure(what, e);
    return new DecryptionFailedError();
  }

  async #openGcm(st: OpenState, s: Pkcs11Handle, handle: Pkcs11Handle, label: string, h: Pkcs11BlobHeader, context: CheckedContext): Promise<Uint8Array> {
    if (!st.mechanisms.has(CK.CKM_AES_GCM)) throw new Pkcs11ProviderError('mechanism-unsupported', 'the token does not offer CKM_AES_GCM');
    this.#checkKey(st.lib, s, handle, label, 'decrypt');
    const parameter = { type: st.binding.CK_PARAMS_GCM, iv: buf(h.iv!), ivBits: GCM_IV_BYTES * 8, aad: buf(gcmAad(h.header, context)), tagBits: GCM_TAG_BYTES * 8 };
    try {
      st.lib.C_DecryptInit(s, { mechanism: CK.CKM_AES_GCM, parameter }, handle);
    } catch (e) {
      if (ckrOf(e) === CKR.KEY_FUNCTION_NOT_PERMITTED) throw new KeyDisabledError(`key ${label} is disabled`, { cause: e });
      throw pkcs11Failure('C_DecryptInit', e);
    }
    const out = Buffer.alloc(h.body.length);
    try {
      const pt = await st.lib.C_DecryptAsync(s, buf(h.body), out).catch((e: unknown) => {
        throw this.#decryptFailure('C_Decrypt', e);
      });
      if (pt.length !== h.dataKeyLength) throw new DecryptionFailedError();
      return new Uint8Array(pt);
    } finally {
      out.fill(0);
    }
  }

  async #openKwp(st: OpenState, s: Pkcs11Handle, handle: Pkcs11Handle, label: string, h: Pkcs11BlobHeader, context: CheckedContext): Promise<Uint8Array> {
    const mechanism = st.kwpMechanism;
    if (mechanism === undefined || !st.mechanisms.has(mechanism)) {
      throw new Pkcs11ProviderError('mechanism-unsupported', 'the token offers neither CKM_AES_KEY_WRAP_PAD (0x210a) nor CKM_AES_KEY_WRAP_KWP (0x210b)');
    }
    this.#checkKey(st.lib, s, handle, label, 'unwrap');
    const obj = await st.lib
      .C_UnwrapKeyAsync(s, { mechanism }, handle, buf(h.body), [
        { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
        { type: CK.CKA_KEY_TYPE, value: CK.CKK_GENERIC_SECRET },
        { type: CK.CKA_TOKEN, value: false },
        { type: CK.CKA_PRIVATE, value: true },
        { type: CK.CKA_SENSITIVE, value: false },
        { type: CK.CKA_EXTRACTABLE, value: true },
      ])
      .catch((e: unknown) => {
        throw this.#decryptFailure('C_UnwrapKey', e);
      });
    let value: Uint8Array | undefined;
    try {
      value = st.lib.C_GetAttributeValue(s, obj, [{ type: CK.CKA_VALUE }])[0]?.value;
    } catch (e) {
      throw pkcs11Failure('C_GetAttributeValue', e);
    } finally {
      this.#destroy(st.lib, s, obj);
    }
    if (value === undefined) throw new DecryptionFailedError();
    try {
      const m = KWP_DIGEST_BYTES + h.dataKeyLength;
      // digest || data key || zero bytes up to a multiple of 8, exactly.
      let ok = value.length === kwpInputLength(h.dataKeyLength);
      let pad = 0;
      for (let i = m; i < value.length; i++) pad |= value[i]!;
      ok = ok && pad === 0;
      if (!ok || !constantTimeEqual(value.subarray(0, KWP_DIGEST_BYTES), kwpContextDigest(h.header, context))) throw new DecryptionFailedError();
      // A copy: the binding gives a Buffer, whose `slice` would be a view of memory wiped below.
      return new Uint8Array(value.subarray(KWP_DIGEST_BYTES, m));
    } finally {
      value.fill(0);
    }
  }

  // ---- the KeyProvider contract ----

  /**
   * Draw a data key (CSPRNG, or the token's RNG with `dataKeySource: 'token'`) and wrap it under
   * the newest version of the key named `keyId`.
   * @param request - `keyId` a key name (`A-Z a-z 0-9 . _ -`, 1..64); `keySpec`/`numberOfBytes`; `encryptionContext`.
   * @returns the data key (the caller wipes it), the blob, `keyId` (the name) and `keyVersion`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, Pkcs11ProviderError
   */
  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    const req = checkGenerateDataKeyRequest(request);
    const name = this.#name(req.keyId);
    return this.#call(async (st) => {
      let plaintext: Uint8Array;
      if (this.#dataKeySource === 'token') {
        const drawn = Buffer.alloc(req.numberOfBytes);
        try {
          await st.pool.use((s) => {
            try {
              st.lib.C_GenerateRandom(s, drawn);
            } catch (e) {
              throw pkcs11Failure('C_GenerateRandom', e);
            }
          });
          plaintext = new Uint8Array(drawn);
        } finally {
          drawn.fill(0);
        }
      } else {
        plaintext = randomBytes(req.numberOfBytes);
      }
      try {
        const w = await this.#wrap(st, name, plaintext, req.context);
        return { keyId: w.keyId, plaintext, ciphertextBlob: w.ciphertextBlob, keyVersion: w.keyVersion! };
      } catch (e) {
        wipe(plaintext);
        throw e;
      }
    });
  }

  /**
   * Unwrap a blob with the key version it names.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, Pkcs11ProviderError
   */
  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    const { blob, context } = checkDecryptRequest(request);
    // Not a blob of this format: refused before the token is opened.
    if (readPkcs11Blob(blob) === undefined) throw new DecryptionFailedError();
    return this.#call((st) => this.#unwrap(st, blob, context));
  }

  /**
   * Wrap given bytes (1..1024) under the newest version of `keyId`, bound to the context.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, Pkcs11ProviderError
   */
  async encrypt(request: EncryptRequest): Promise<WrappedKey> {
    const req = checkEncryptRequest(request, PKCS11_LIMITS.maxDataKeyBytes);
    try {
      const name = this.#name(req.keyId);
      return await this.#call((st) => this.#wrap(st, name, req.plaintext, req.context));
    } finally {
      wipe(req.plaintext);
    }
  }

  /**
   * Unwrap a blob as {@link decrypt} does (same errors) and wrap its data key under the newest
   * version of `destinationKeyId`; the data key stays in this process's memory only while it moves.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, Pkcs11ProviderError
   */
  async reEncrypt(request: ReEncryptRequest): Promise<WrappedKey> {
    const req = checkReEncryptRequest(request);
    const dest = this.#name(req.destinationKeyId);
    return this.#call(async (st) => {
      const { plaintext } = await this.#unwrap(st, req.blob, req.sourceContext);
      try {
        return await this.#wrap(st, dest, plaintext, req.destinationContext);
      } finally {
        wipe(plaintext);
      }
    });
  }

  /** The key name and version a blob of this format names, read without the token; `undefined` for anything else. Never throws. */
  describeBlob(blob: Uint8Array): BlobDescription | undefined {
    try {
      if (!isBytes(blob)) return undefined;
      const h = readPkcs11Blob(new Uint8Array(blob));
      return h === undefined ? undefined : { keyId: h.name, keyVersion: String(h.version) };
    } catch {
      return undefined;
    }
  }

  // ---- key management ----

  #admin<T>(fn: (st: OpenState, s: Pkcs11Handle) => T): Promise<T> {
    const run = this.#call((st) => {
      const queued = this.#adminQueue.then(() => st.pool.use((s) => fn(st, s)));
      this.#adminQueue = queued.catch(() => undefined);
      return queued;
    });
    return run;
  }

  #generateVersion(st: OpenState, s: Pkcs11Handle, name: string, version: number): Pkcs11KeyVersion {
    const label = keyLabel(name, version);
    let handle: Pkcs11Handle;
    try {
      handle = st.lib.C_GenerateKey(s, { mechanism: CK.CKM_AES_KEY_GEN }, [
        { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
        { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
        { type: CK.CKA_VALUE_LEN, value: 32 },
        { type: CK.CKA_TOKEN, value: true },
        { type: CK.CKA_PRIVATE, value: true },
        { type: CK.CKA_SENSITIVE, value: true },
        { type: CK.CKA_EXTRACTABLE, value: false },
        { type: CK.CKA_MODIFIABLE, value: true },
        { type: CK.CKA_ENCRYPT, value: true },
        { type: CK.CKA_DECRYPT, value: true },
        { type: CK.CKA_WRAP, value: true },
        { type: CK.CKA_UNWRAP, value: true },
        { type: CK.CKA_LABEL, value: label },
        { type: CK.CKA_ID, value: Buffer.from(label, 'utf8') },
      ]);
    } catch (e) {
      throw pkcs11Failure('C_GenerateKey', e);
    }
    // Another process may have made the same label at the same moment: keep neither ambiguous.
    try {
      this.#findLabel(st.lib, s, label);
    } catch (e) {
      this.#destroy(st.lib, s, handle);
      throw e;
    }
    this.#newest.set(name, version);
    return { keyId: name, keyVersion: String(version), label };
  }

  /**
   * Make version 1 of a new master key on the token: AES-256, generated inside the token,
   * `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_TOKEN` and `CKA_PRIVATE` true, labelled
   * (and `CKA_ID`) `name/v1`. For set-up and tests; an HSM's own tools may make the keys instead.
   * @param name - the key name, 1..64 of `A-Z a-z 0-9 . _ -`.
   * @throws InvalidParameterError for a bad name or one that exists; Pkcs11ProviderError
   */
  async createKey(name: string): Promise<Pkcs11KeyVersion> {
    checkKeyId(name, 'name');
    if (!KEY_NAME_RE.test(name)) return Promise.reject(new InvalidParameterError('"name" must be 1 to 64 of A-Z a-z 0-9 . _ -'));
    return this.#admin((st, s) => {
      if (this.#versionsOf(st.lib, s, name).length > 0) throw new InvalidParameterError(`key ${name} exists already (rotateKey makes a new version)`);
      return this.#generateVersion(st, s, name, 1);
    });
  }

  /**
   * Make the next version of a key (`name/v<newest+1>`, as {@link createKey} makes keys). New
   * blobs use it; blobs of older versions still decrypt with theirs.
   * @throws KeyNotFoundError when the key has no version; InvalidParameterError; Pkcs11ProviderError
   */
  async rotateKey(name: string): Promise<Pkcs11KeyVersion> {
    checkKeyId(name, 'name');
    if (!KEY_NAME_RE.test(name)) return Promise.reject(new KeyNotFoundError(`key not found: ${name.slice(0, 80)}`));
    return this.#admin((st, s) => {
      const versions = this.#versionsOf(st.lib, s, name);
      const newest = versions[versions.length - 1];
      if (newest === undefined) throw new KeyNotFoundError(`key not found: ${name}`);
      if (newest >= MAX_KEY_VERSION) throw new InvalidParameterError(`key ${name} has reached its last version`);
      return this.#generateVersion(st, s, name, newest + 1);
    });
  }

  /**
   * The versions of a key on the token, ascending (empty when there is none).
   * @throws InvalidParameterError; Pkcs11ProviderError
   */
  async listKeyVersions(name: string): Promise<number[]> {
    checkKeyId(name, 'name');
    if (!KEY_NAME_RE.test(name)) return Promise.resolve([]);
    return this.#admin((st, s) => this.#versionsOf(st.lib, s, name));
  }

  async #setUse(name: string, allowed: boolean): Promise<void> {
    checkKeyId(name, 'name');
    if (!KEY_NAME_RE.test(name)) return Promise.reject(new KeyNotFoundError(`key not found: ${name.slice(0, 80)}`));
    return this.#admin((st, s) => {
      const versions = this.#versionsOf(st.lib, s, name);
      if (versions.length === 0) throw new KeyNotFoundError(`key not found: ${name}`);
      for (const v of versions) {
        const handle = this.#findLabel(st.lib, s, keyLabel(name, v));
        if (handle === undefined) continue;
        try {
          st.lib.C_SetAttributeValue(s, handle, [
            { type: CK.CKA_ENCRYPT, value: allowed },
            { type: CK.CKA_DECRYPT, value: allowed },
            { type: CK.CKA_WRAP, value: allowed },
            { type: CK.CKA_UNWRAP, value: allowed },
          ] satisfies Pkcs11Attribute[]);
        } catch (e) {
          throw pkcs11Failure('C_SetAttributeValue', e);
        }
      }
    });
  }

  /**
   * Disable every version of a key: its `CKA_ENCRYPT`, `CKA_DECRYPT`, `CKA_WRAP` and `CKA_UNWRAP`
   * become false, and every use is refused with {@link KeyDisabledError} until {@link enableKey}.
   * @throws KeyNotFoundError; Pkcs11ProviderError (a token that does not let these attributes change)
   */
  disableKey(name: string): Promise<void> {
    return this.#setUse(name, false);
  }

  /** Undo {@link disableKey}. @throws KeyNotFoundError; Pkcs11ProviderError */
  enableKey(name: string): Promise<void> {
    return this.#setUse(name, true);
  }

  /**
   * Wait for running calls, close this provider's sessions, and finalise the module once no other
   * provider of the process uses it. Later calls throw Pkcs11ProviderError `closed`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      const ready = this.#ready;
      if (ready === undefined) return;
      let st: OpenState;
      try {
        st = await ready;
      } catch {
        return;
      }
      await st.pool.close();
      this.#unref(st.binding, st.path, st.loaded);
    })();
    return this.#closing;
  }

  /** JSON form: the module, token and settings; never the PIN. */
  toJSON(): Record<string, unknown> {
    return {
      providerId: this.providerId,
      module: this.#module,
      tokenLabel: this.#tokenLabel,
      tokenSerial: this.#tokenSerial,
      sessions: this.#sessions,
      wrap: this.#scheme,
      dataKeySource: this.#dataKeySource,
    };
  }

  /** What `util.inspect` shows: the settings, never the PIN. */
  [inspect.custom](): string {
    return `Pkcs11Provider ${inspect(this.toJSON())}`;
  }
}

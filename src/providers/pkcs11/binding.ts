/**
 * The PKCS#11 binding: the optional peer dependency `pkcs11js` (a native addon), loaded on first
 * use only, so that importing any other entry point of envelope-kit never needs it; and the
 * PKCS#11 constants the provider uses (PKCS#11 v2.40 `pkcs11t.h`; v3.0 for `CKM_AES_KEY_WRAP_KWP`).
 * @module
 */
import { Pkcs11ProviderError } from './errors.js';

/** An opaque handle (slot, session or object) as the binding gives it. */
export type Pkcs11Handle = Uint8Array;

/** An attribute of a template as the binding takes it. */
export interface Pkcs11Attribute {
  readonly type: number;
  readonly value?: number | boolean | string | Uint8Array;
}

/** A mechanism as the binding takes it; `parameter` is a `pkcs11js` parameter object for GCM. */
export interface Pkcs11Mechanism {
  readonly mechanism: number;
  readonly parameter?: unknown;
}

/**
 * The part of a `pkcs11js` `PKCS11` object the provider calls. Its methods throw the binding's
 * `Pkcs11Error` (with a numeric `code`, the `CKR_*` value) on failure.
 */
export interface Pkcs11Module {
  load(path: string): void;
  C_Initialize(options?: { flags?: number }): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Pkcs11Handle[];
  C_GetTokenInfo(slot: Pkcs11Handle): { label: string; serialNumber: string; flags: number };
  C_GetMechanismList(slot: Pkcs11Handle): number[];
  C_OpenSession(slot: Pkcs11Handle, flags: number): Pkcs11Handle;
  C_CloseSession(session: Pkcs11Handle): void;
  C_Login(session: Pkcs11Handle, userType: number, pin?: string): void;
  C_FindObjectsInit(session: Pkcs11Handle, template: Pkcs11Attribute[]): void;
  C_FindObjects(session: Pkcs11Handle, maxObjectCount: number): Pkcs11Handle[];
  C_FindObjectsFinal(session: Pkcs11Handle): void;
  C_GetAttributeValue(session: Pkcs11Handle, object: Pkcs11Handle, template: Pkcs11Attribute[]): { type: number; value: Uint8Array }[];
  C_SetAttributeValue(session: Pkcs11Handle, object: Pkcs11Handle, template: Pkcs11Attribute[]): void;
  C_CreateObject(session: Pkcs11Handle, template: Pkcs11Attribute[]): Pkcs11Handle;
  C_DestroyObject(session: Pkcs11Handle, object: Pkcs11Handle): void;
  C_GenerateKey(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, template: Pkcs11Attribute[]): Pkcs11Handle;
  C_GenerateRandom(session: Pkcs11Handle, buffer: Uint8Array): Uint8Array;
  C_EncryptInit(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, key: Pkcs11Handle): void;
  C_EncryptAsync(session: Pkcs11Handle, inData: Uint8Array, outData: Uint8Array): Promise<Uint8Array>;
  C_DecryptInit(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, key: Pkcs11Handle): void;
  C_DecryptAsync(session: Pkcs11Handle, inData: Uint8Array, outData: Uint8Array): Promise<Uint8Array>;
  C_WrapKeyAsync(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, wrappingKey: Pkcs11Handle, key: Pkcs11Handle, wrappedKey: Uint8Array): Promise<Uint8Array>;
  C_UnwrapKeyAsync(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, unwrappingKey: Pkcs11Handle, wrappedKey: Uint8Array, template: Pkcs11Attribute[]): Promise<Pkcs11Handle>;
}

/** The `pkcs11js` module as far as the provider uses it: the `PKCS11` class and the GCM parameter tag. */
export interface Pkcs11Binding {
  readonly PKCS11: new () => Pkcs11Module;
  /** `pkcs11js`'s tag of a `CK_GCM_PARAMS` parameter object. */
  readonly CK_PARAMS_GCM: number;
}

/** PKCS#11 constants (`pkcs11t.h`). */
export const CK = Object.freeze({
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
  CKF_OS_LOCKING_OK: 0x2,
  CKF_TOKEN_INITIALIZED: 0x400,
  CKF_USER_PIN_LOCKED: 0x40000,
  CKU_USER: 1,
  CKO_SECRET_KEY: 0x4,
  CKK_GENERIC_SECRET: 0x10,
  CKK_AES: 0x1f,
  CKA_CLASS: 0x0,
  CKA_TOKEN: 0x1,
  CKA_PRIVATE: 0x2,
  CKA_LABEL: 0x3,
  CKA_VALUE: 0x11,
  CKA_KEY_TYPE: 0x100,
  CKA_ID: 0x102,
  CKA_SENSITIVE: 0x103,
  CKA_ENCRYPT: 0x104,
  CKA_DECRYPT: 0x105,
  CKA_WRAP: 0x106,
  CKA_UNWRAP: 0x107,
  CKA_VALUE_LEN: 0x161,
  CKA_EXTRACTABLE: 0x162,
  CKA_MODIFIABLE: 0x170,
  CKM_AES_KEY_GEN: 0x1080,
  CKM_AES_GCM: 0x1087,
  /** RFC 5649 key wrap with padding, as SoftHSM2 and PKCS#11 v2.40 errata name it. */
  CKM_AES_KEY_WRAP_PAD: 0x210a,
  /** RFC 5649 key wrap with padding, as PKCS#11 v3.0 names it. */
  CKM_AES_KEY_WRAP_KWP: 0x210b,
});

/** The npm package the provider loads. */
export const BINDING_PACKAGE = 'pkcs11js';

/** True when `m` has the shape of the `pkcs11js` module. Never throws. */
export function isPkcs11Binding(m: unknown): m is Pkcs11Binding {
  try {
    return m !== null && typeof m === 'object' && typeof (m as Pkcs11Binding).PKCS11 === 'function' && typeof (m as Pkcs11Binding).CK_PARAMS_GCM === 'number';
  } catch {
    return false;
  }
}

/**
 * Load the binding (`pkcs11js` unless `specifier` says otherwise) with a dynamic import.
 * @throws Pkcs11ProviderError `binding-missing` when it is not installed or its addon did not build.
 */
export async function loadPkcs11Binding(specifier: string = BINDING_PACKAGE): Promise<Pkcs11Binding> {
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (e) {
    throw new Pkcs11ProviderError(
      'binding-missing',
      `the PKCS#11 provider needs the optional peer dependency "${BINDING_PACKAGE}" (npm install ${BINDING_PACKAGE}; it builds a native addon with node-gyp): it could not be loaded`,
      { cause: e },
    );
  }
  const candidates = [mod, (mod as { default?: unknown } | null)?.default];
  for (const c of candidates) if (isPkcs11Binding(c)) return c;
  throw new Pkcs11ProviderError('binding-missing', `"${specifier}" is not the ${BINDING_PACKAGE} module`);
}

/**
 * SoftHSM2 for the PKCS#11 suites: a fresh `SOFTHSM2_CONF` and token directory in a temporary
 * folder, tokens made with `softhsm2-util --init-token --free`, and nothing left in the tree.
 *
 * Without SoftHSM2 (Debian: `apt-get install -y softhsm2`), the suites skip with the reason
 * printed, unless `CI` is set: then a missing SoftHSM2 fails them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The SoftHSM2 module, as Debian installs it (`SOFTHSM2_MODULE` overrides). */
export const SOFTHSM2_MODULE = process.env['SOFTHSM2_MODULE'] ?? '/usr/lib/softhsm/libsofthsm2.so';

/** The user PIN of every test token. */
export const TEST_PIN = 'ek-test-pin-5678';
/** The SO PIN of every test token. */
export const TEST_SO_PIN = 'ek-test-so-1234';

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Why the suites cannot run here, or `undefined` when SoftHSM2 is installed. */
export function softhsmMissing(): string | undefined {
  if (which('softhsm2-util') === undefined) return 'softhsm2-util is not installed (apt-get install -y softhsm2)';
  if (!existsSync(SOFTHSM2_MODULE)) return `no SoftHSM2 module at ${SOFTHSM2_MODULE}`;
  return undefined;
}

/**
 * True when the suites should run; false (with the reason printed) when SoftHSM2 is missing and
 * `CI` is not set. With `CI` set and SoftHSM2 missing, throws: CI must run them.
 */
export function softhsmAvailable(): boolean {
  const missing = softhsmMissing();
  if (missing === undefined) return true;
  if (process.env['CI']) throw new Error(`CI is set but SoftHSM2 is missing: ${missing}`);
  console.warn(`PKCS#11 tests skipped: ${missing}`);
  return false;
}

/** A SoftHSM2 set-up of the suite's own. */
export interface SoftHsm {
  readonly dir: string;
  readonly conf: string;
  /** Make a token with this label (user PIN {@link TEST_PIN}). */
  initToken(label: string): void;
  /** Remove the folder. */
  remove(): void;
}

/**
 * Make a temporary folder with a `softhsm2.conf` and a token directory, point `SOFTHSM2_CONF` of
 * this process at it (before any module is loaded), and make the tokens named.
 */
export function setUpSoftHsm(...labels: string[]): SoftHsm {
  const dir = mkdtempSync(path.join(tmpdir(), 'ek-softhsm-'));
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env['SOFTHSM2_CONF'] = conf;
  const hsm: SoftHsm = {
    dir,
    conf,
    initToken(label: string) {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', TEST_SO_PIN, '--pin', TEST_PIN], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: 'pipe',
      });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const l of labels) hsm.initToken(l);
  return hsm;
}

/**
 * The bundle's entry (esbuild, platform "browser"): the published entry points as a package
 * user imports them, handed to the cases of `suite.ts`. As a script it sets
 * `globalThis.__envelopeKitSuite`; the workerd worker imports {@link run}.
 */
import * as core from 'envelope-kit';
import * as alibaba from 'envelope-kit/alibaba';
import { CASES, type Fixtures } from './suite.js';

/** One case's outcome, as JSON. */
export type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

/** An error, its code, stack and causes, as text. */
function describe(e: unknown, depth = 0): string {
  if (!(e instanceof Error)) return String(e);
  const code = 'code' in e ? ` (${String((e as { code: unknown }).code)})` : '';
  const cause = e.cause !== undefined && depth < 4 ? `\ncaused by: ${describe(e.cause, depth + 1)}` : '';
  return `${e.name}: ${e.message}${code}\n${e.stack ?? ''}${cause}`;
}

/** Run the case `name` on `fixtures`; never rejects. */
export async function run(name: string, fixtures: Fixtures): Promise<Outcome> {
  const c = CASES[name];
  if (c === undefined) return { ok: false, error: `no case named ${JSON.stringify(name)}` };
  try {
    return { ok: true, value: (await c({ core, alibaba }, fixtures)) ?? null };
  } catch (e) {
    const text = describe(e);
    console.error(`case failed: ${name}: ${text}`);
    return { ok: false, error: text };
  }
}

(globalThis as { __envelopeKitSuite?: unknown }).__envelopeKitSuite = { run, names: Object.keys(CASES) };

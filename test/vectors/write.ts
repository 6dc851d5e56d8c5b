/**
 * Writing vector files for the generators: every vector as `<dir>/<name>.txt`,
 * and any other `.txt` file in the folder removed (a renamed scenario must not
 * leave a stale vector behind).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A vector file: its name (without `.txt`) and its whole text. */
export interface VectorText {
  readonly name: string;
  readonly text: string;
}

/** Write `vectors` into `dir`, remove every other `.txt` file there, and return the file names. */
export function writeVectorFiles(dir: string, vectors: readonly VectorText[]): string[] {
  mkdirSync(dir, { recursive: true });
  const names = new Set(vectors.map((v) => `${v.name}.txt`));
  for (const f of readdirSync(dir)) if (f.endsWith('.txt') && !names.has(f)) rmSync(path.join(dir, f));
  for (const v of vectors) writeFileSync(path.join(dir, `${v.name}.txt`), v.text);
  return [...names];
}

/**
 * The command line of a generator: when `moduleUrl` is the script being run, write what `build`
 * gives (or what it resolves to) into the folder named by the first argument (default: the
 * generator's own folder).
 */
export function writeFromCommandLine(moduleUrl: string, what: string, build: () => readonly VectorText[] | Promise<readonly VectorText[]>): void {
  const self = fileURLToPath(moduleUrl);
  if (!process.argv[1] || path.resolve(process.argv[1]) !== self) return;
  const out = path.resolve(process.argv[2] ?? path.dirname(self));
  void Promise.resolve(build()).then(
    (vectors) => {
      const written = writeVectorFiles(out, vectors);
      console.log(`wrote ${written.length} ${what} to ${out}`);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}

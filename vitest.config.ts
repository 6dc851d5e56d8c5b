import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The package's internal import `#aead-default` (package.json "imports") points at dist/; the suites run
 * on the sources, so it is aliased here to the source module of each runtime's default backend.
 */
const source = (file: string) => fileURLToPath(new URL(`./src/core/aead/${file}`, import.meta.url));

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        resolve: { alias: { '#aead-default': source('default.node.ts') } },
        test: { name: 'node', include: ['test/**/*.test.ts'] },
      },
      {
        // The core suites again on the default backend a browser or edge runtime gets (@noble/ciphers).
        extends: true,
        resolve: { alias: { '#aead-default': source('default.ts') } },
        test: {
          name: 'portable',
          include: [
            'test/envelope.test.ts',
            'test/envelope.property.test.ts',
            'test/envelope.binding.test.ts',
            'test/fields.test.ts',
            'test/objects.test.ts',
            'test/tamper.test.ts',
            'test/records-vectors.test.ts',
            'test/cache.test.ts',
            'test/stream.test.ts',
            'test/framed-vectors.test.ts',
            'test/stream.property.test.ts',
            'test/aead-webcrypto.test.ts',
            'test/rewrap.property.test.ts',
          ],
        },
      },
    ],
  },
});

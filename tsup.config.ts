import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    node: 'src/node.ts',
    alibaba: 'src/providers/alibaba/index.ts',
    'alibaba-emulator': 'src/providers/alibaba/emulator/index.ts',
    pkcs11: 'src/providers/pkcs11/index.ts',
    testing: 'src/testing/index.ts',
    'emulator-cli': 'src/providers/alibaba/emulator/cli.ts',
    cli: 'src/cli/main.ts',
    // The targets of the internal import `#aead-default` (package.json "imports").
    'aead-default': 'src/core/aead/default.ts',
    'aead-default.node': 'src/core/aead/default.node.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'es2022',
  platform: 'neutral',
  removeNodeProtocol: false,
  // `#aead-default` stays an import so that the runtime's resolver picks the backend.
  external: [/^node:/, /^@noble\//, 'zod', 'fast-check', 'pkcs11js', /^#/],
});

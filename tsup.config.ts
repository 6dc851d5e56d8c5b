import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'index.node': 'src/index.node.ts',
    node: 'src/node.ts',
    alibaba: 'src/providers/alibaba/index.ts',
    'alibaba-emulator': 'src/emulator/index.ts',
    'emulator-cli': 'src/emulator/cli.ts',
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
  external: [/^node:/, /^@noble\//, 'zod'],
});

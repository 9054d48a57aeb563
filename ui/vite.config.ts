import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The built UI is embedded in the node's binary (crates/api/build.rs); `npm run dev` proxies the
// API to a node on 127.0.0.1:47478 (AIENV_NODE overrides) for working on the UI.
const node = process.env.AIENV_NODE ?? 'http://127.0.0.1:47478';

export default defineConfig({
  plugins: [svelte()],
  build: { target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 200 },
  server: { proxy: { '/api': { target: node, ws: true } } },
  test: { include: ['tests/unit/**/*.test.ts'] },
});

import { readFile } from 'node:fs/promises';

import { defineConfig, type Plugin } from 'vitest/config';

// `import source from './x.lua'` gives the file's text, as tsup's `.lua` text loader does in the build.
const luaAsText: Plugin = {
	name: 'runledger:lua-as-text',
	async load(id) {
		const path = id.split('?')[0] as string;
		if (!path.endsWith('.lua')) return null;
		return `export default ${JSON.stringify(await readFile(path, 'utf8'))};`;
	},
};

export default defineConfig({
	test: {
		projects: [
			{
				plugins: [luaAsText],
				test: {
					name: 'unit',
					include: ['test/**/*.test.ts'],
					exclude: ['test/package/**', 'test/redis/**', 'test/browser/**', 'test/soak/**'],
					testTimeout: 20_000,
				},
			},
			{
				// Against a real redis-server that test/redis/setup.ts starts on a free loopback port.
				plugins: [luaAsText],
				test: {
					name: 'redis',
					include: ['test/redis/**/*.test.ts'],
					globalSetup: ['test/redis/setup.ts'],
					testTimeout: 30_000,
					hookTimeout: 30_000,
				},
			},
			{
				// Long runs watching heap, listeners, handles and Redis keys. Small under `npm test`,
				// full size with RUNLEDGER_SUITE=full (`npm run test:soak`). Forks with --expose-gc so
				// that the tests can call global.gc(); the Redis file uses the same throwaway server setup.
				plugins: [luaAsText],
				test: {
					name: 'soak',
					include: ['test/soak/**/*.test.ts'],
					globalSetup: ['test/redis/setup.ts'],
					pool: 'forks',
					execArgv: ['--expose-gc'],
					testTimeout: 600_000,
					hookTimeout: 60_000,
				},
			},
			{
				// The example page in Debian's headless Chromium, driven by playwright-core.
				test: {
					name: 'browser',
					include: ['test/browser/**/*.test.ts'],
					testTimeout: 60_000,
					hookTimeout: 60_000,
				},
			},
			{
				test: {
					// Packs the built package and installs it into a temporary project: needs `npm run build` first.
					name: 'package',
					include: ['test/package/**/*.test.ts'],
					testTimeout: 180_000,
					hookTimeout: 180_000,
				},
			},
		],
	},
});

import { defineConfig } from 'tsup';

const entry = {
	index: 'src/index.ts',
	'testing/index': 'src/testing/index.ts',
	'redis/index': 'src/redis/index.ts',
	'http/index': 'src/http/index.ts',
	'client/index': 'src/client/index.ts',
};

// The Lua scripts of runledger/redis are inlined as strings; ioredis (an optional peer) stays external.
const loader = { '.lua': 'text' } as const;
const external = ['ioredis'];

export default defineConfig([
	// ESM: dependencies stay external and are resolved by the host's package manager.
	{
		entry,
		format: 'esm',
		target: 'node20',
		platform: 'node',
		dts: true,
		sourcemap: true,
		clean: true,
		treeshake: true,
		loader,
		external,
	},
	// CommonJS, split like the ESM build so that `runledger` and `runledger/redis` share one copy
	// of the error classes (`instanceof ValidationError` holds across entries). Any ESM-only
	// dependency added later must be listed in `noExternal` here, so that `require('runledger')`
	// works on Node versions without require(esm).
	{
		entry,
		format: 'cjs',
		splitting: true,
		target: 'node20',
		platform: 'node',
		dts: true,
		sourcemap: true,
		treeshake: true,
		loader,
		external,
	},
]);

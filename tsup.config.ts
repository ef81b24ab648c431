import { defineConfig } from 'tsup';

const entry = {
	index: 'src/index.ts',
	'testing/index': 'src/testing/index.ts',
};

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
	},
	// CommonJS: nanoid ships only as ESM, so it is inlined here so that `require('runledger')`
	// works on every supported Node version, including those without require(esm).
	{
		entry,
		format: 'cjs',
		target: 'node20',
		platform: 'node',
		dts: true,
		sourcemap: true,
		treeshake: true,
		noExternal: ['nanoid'],
	},
]);

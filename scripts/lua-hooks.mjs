/**
 * Lets Node (and tsx) import `.lua` files as text, as tsup and vitest do:
 *   npx tsx --import ./scripts/lua-hooks.mjs test/redis/measure-memory.ts
 * Only for running runledger's sources directly; the built package has the scripts inlined.
 */
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

/** Node module hook: a `.lua` file becomes a module whose default export is its text. */
export async function load(url, context, nextLoad) {
	if (url.startsWith('file:') && new URL(url).pathname.endsWith('.lua')) {
		const source = await readFile(new URL(url), 'utf8');
		return { format: 'module', source: `export default ${JSON.stringify(source)};`, shortCircuit: true };
	}
	return nextLoad(url, context);
}

// Imported with --import (main thread): register this file as a hooks module.
if (isMainThread) register(import.meta.url);

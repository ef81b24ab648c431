/**
 * A quick side-by-side for library work: p-limit(16) and the runledger memory contender, rounds
 * alternated, ratio per round. `npm run bench` is the reference; this is the five-second loop.
 *
 *   node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/profile/versus-p-limit.ts [count] [--unlimited]
 */
import pLimit from 'p-limit';

import { createMemoryManager, runMemory } from '../contenders/runledger-memory.js';
import { trivialTask } from '../workload.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const concurrency = args.includes('--unlimited') ? Number.POSITIVE_INFINITY : 16;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function timePLimit(): Promise<number> {
	const limit = pLimit(concurrency);
	const start = process.hrtime.bigint();
	const promises: Array<Promise<unknown>> = [];
	for (let index = 0; index < count; index++) promises.push(limit(trivialTask));
	await Promise.all(promises);
	return Number(process.hrtime.bigint() - start) / 1e3 / count;
}

async function timeRunledger(): Promise<number> {
	const { manager } = createMemoryManager(concurrency, Math.max(200_000, count * 2));
	const start = process.hrtime.bigint();
	await runMemory(manager, count);
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	return perTask;
}

await timePLimit();
await timeRunledger();
for (let round = 0; round < 5; round++) {
	gc();
	const a = await timePLimit();
	gc();
	const b = await timeRunledger();
	console.log(`round ${round + 1}: p-limit ${a.toFixed(2)} µs, runledger ${b.toFixed(2)} µs, ratio ${(b / a).toFixed(2)}×`);
}

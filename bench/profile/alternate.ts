/**
 * The loop of the quick side-by-side scripts: p-limit and one contender alternated in one
 * process, a GC before each timed run, one warm-up pair, then the ratio printed per round.
 */
import pLimit from 'p-limit';

import { createMemoryManager, runMemory } from '../contenders/runledger-memory.js';
import { trivialTask } from '../workload.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** µs per task for `count` trivial tasks through p-limit(`concurrency`). */
export async function timePLimit(count: number, concurrency: number): Promise<number> {
	const limit = pLimit(concurrency);
	const start = process.hrtime.bigint();
	const promises: Array<Promise<unknown>> = [];
	for (let index = 0; index < count; index++) promises.push(limit(trivialTask));
	await Promise.all(promises);
	return Number(process.hrtime.bigint() - start) / 1e3 / count;
}

/** µs per task for `count` trivial tasks through the runledger memory contender at `concurrency` (a fresh manager and registry). */
export async function timeRunledger(count: number, concurrency: number): Promise<number> {
	const { manager } = createMemoryManager(concurrency, Math.max(200_000, count * 2));
	const start = process.hrtime.bigint();
	await runMemory(manager, count);
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	return perTask;
}

/** Runs `rounds` alternated pairs of p-limit(`concurrency`) and `contender` (µs per task), printing each ratio. */
export async function alternateWithPLimit(options: { readonly count: number; readonly concurrency: number; readonly rounds: number; readonly name: string; readonly contender: () => Promise<number> }): Promise<void> {
	const { count, concurrency, rounds, name, contender } = options;
	const limitName = `p-limit(${concurrency === Number.POSITIVE_INFINITY ? '∞' : concurrency})`;
	await timePLimit(count, concurrency);
	await contender();
	for (let round = 0; round < rounds; round++) {
		gc();
		const a = await timePLimit(count, concurrency);
		gc();
		const b = await contender();
		console.log(`round ${round + 1}: ${limitName} ${a.toFixed(2)} µs, ${name} ${b.toFixed(2)} µs, ratio ${(b / a).toFixed(2)}×`);
	}
}

/**
 * The loop of the quick side-by-side scripts: p-limit and one contender alternated in one
 * process, a GC before each timed run, one warm-up pair, then the ratio printed per round.
 */
import pLimit from 'p-limit';

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

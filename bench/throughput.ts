/**
 * Section 1: per-task time of trivial tasks, every contender in one process, the order rotated
 * each round, a full GC before each timed run. Ratios are taken within each round.
 */
import { type Summary, fullGc, now, rotate, summarize } from './stats.js';
import type { Contender } from './workload.js';

export interface ContenderTimes {
	readonly key: string;
	readonly label: string;
	/** µs per task, one per round, in round order. */
	readonly perTaskUs: number[];
	readonly summary: Summary;
}

export interface ThroughputResult {
	readonly count: number;
	readonly rounds: number;
	readonly contenders: ContenderTimes[];
}

export async function measureThroughput(contenders: readonly Contender[], count: number, rounds: number, log: (line: string) => void): Promise<ThroughputResult> {
	const times = new Map<string, number[]>(contenders.map((contender) => [contender.key, []]));
	// Round 0 is a warm-up (JIT, first allocations) and is not recorded.
	for (let round = 0; round <= rounds; round++) {
		const order = rotate(contenders, round);
		const line: string[] = [];
		for (const contender of order) {
			const prepared = await contender.prepare(count);
			await fullGc();
			const start = now();
			await prepared.run();
			const elapsed = now() - start;
			await prepared.teardown?.();
			const perTask = elapsed / count / 1000;
			if (round > 0) times.get(contender.key)!.push(perTask);
			line.push(`${contender.key} ${perTask.toFixed(2)}`);
		}
		log(`  ${round === 0 ? 'warm-up' : `round ${round}/${rounds}`}: ${line.join(', ')} µs/task`);
	}
	// Per-round values are stored in round order whatever the rotation, so index i is round i for every contender.
	return {
		count,
		rounds,
		contenders: contenders.map((contender) => {
			const perTaskUs = times.get(contender.key)!;
			return { key: contender.key, label: contender.label, perTaskUs, summary: summarize(perTaskUs) };
		}),
	};
}

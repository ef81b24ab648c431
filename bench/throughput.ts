/**
 * Section 1: per-task time of trivial tasks, every contender in one process, the order rotated
 * each round, a full GC before each timed run. Ratios are taken within each round.
 *
 * Each timed run's garbage-collection pauses are summed too (`PerformanceObserver` on `gc`
 * entries): what is left is the time spent running the contender's code and the runtime's.
 *
 * Between the GC and the timed run, each contender runs WARM_UP_TASKS untimed: a forced full
 * collection drops the hidden classes of objects no longer alive (a finished run's records,
 * say), and V8 throws away the optimised code that checked for them, so without it a timed run
 * would begin by optimising its code again. A service sees that only after an idle spell.
 */
import { GcPauses, type Summary, fullGc, now, rotate, summarize } from './stats.js';
import type { Contender } from './workload.js';

/** Tasks each contender runs, untimed, between the full GC and its timed run. */
export const WARM_UP_TASKS = 2_000;

/** Runs `count` tasks through a fresh instance of `contender`, untimed. */
export async function warmUp(contender: Contender, count = WARM_UP_TASKS): Promise<void> {
	const prepared = await contender.prepare(count);
	await prepared.run();
	await prepared.teardown?.();
}

export interface ContenderTimes {
	readonly key: string;
	readonly label: string;
	/** µs per task, one per round, in round order. */
	readonly perTaskUs: number[];
	readonly summary: Summary;
	/** Of `perTaskUs`, µs per task spent in garbage-collection pauses, per round. */
	readonly gcUs: number[];
	/** `perTaskUs` less `gcUs`, per round. */
	readonly outsideGcUs: number[];
}

export interface ThroughputResult {
	readonly count: number;
	readonly rounds: number;
	readonly contenders: ContenderTimes[];
}

export async function measureThroughput(contenders: readonly Contender[], count: number, rounds: number, log: (line: string) => void): Promise<ThroughputResult> {
	const times = new Map<string, number[]>(contenders.map((contender) => [contender.key, []]));
	const gcTimes = new Map<string, number[]>(contenders.map((contender) => [contender.key, []]));
	const pauses = new GcPauses();
	// Round 0 is a warm-up (JIT, first allocations) and is not recorded.
	for (let round = 0; round <= rounds; round++) {
		const order = rotate(contenders, round);
		const line: string[] = [];
		for (const contender of order) {
			const prepared = await contender.prepare(count);
			await fullGc();
			await warmUp(contender);
			await pauses.begin();
			const start = now();
			await prepared.run();
			const elapsed = now() - start;
			pauses.end();
			await prepared.teardown?.();
			const gcMs = await pauses.totalMs();
			const perTask = elapsed / count / 1000;
			if (round > 0) {
				times.get(contender.key)!.push(perTask);
				gcTimes.get(contender.key)!.push((gcMs * 1000) / count);
			}
			line.push(`${contender.key} ${perTask.toFixed(2)}`);
		}
		log(`  ${round === 0 ? 'warm-up' : `round ${round}/${rounds}`}: ${line.join(', ')} µs/task`);
	}
	pauses.disconnect();
	// Per-round values are stored in round order whatever the rotation, so index i is round i for every contender.
	return {
		count,
		rounds,
		contenders: contenders.map((contender) => {
			const perTaskUs = times.get(contender.key)!;
			const gcUs = gcTimes.get(contender.key)!;
			const outsideGcUs = perTaskUs.map((us, index) => us - (gcUs[index] as number));
			return { key: contender.key, label: contender.label, perTaskUs, summary: summarize(perTaskUs), gcUs, outsideGcUs };
		}),
	};
}

/**
 * Section 2: heap retained per finished run (no parameters, no result). A full GC, heapUsed,
 * N runs to completion into a store that is kept, a full GC, heapUsed again: (after − before) / N.
 */
import { NaiveTracker } from './contenders/naive-tracker.js';
import { createMemoryManager, runMemory } from './contenders/runledger-memory.js';
import { type Summary, rotate, settledHeap, summarize } from './stats.js';
import { emptyTask } from './workload.js';

export interface HeapResult {
	readonly count: number;
	readonly rounds: number;
	readonly runledger: Summary;
	readonly naive: Summary;
}

interface Subject {
	readonly key: 'runledger' | 'naive';
	/** Runs `count` empty tasks to completion; resolves what holds the records (kept alive across the second GC). */
	fill(count: number): Promise<{ size: number }>;
}

const subjects: Subject[] = [
	{
		key: 'runledger',
		async fill(count) {
			const { manager, registry } = createMemoryManager(16, Number.POSITIVE_INFINITY);
			await runMemory(manager, count, emptyTask);
			await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
			return registry;
		},
	},
	{
		key: 'naive',
		async fill(count) {
			const tracker = new NaiveTracker(16);
			for (let index = 0; index < count; index++) tracker.start('bench', emptyTask);
			await tracker.waitAll();
			return tracker.records;
		},
	},
];

/** Bytes of heap retained per run by `fill`, measured once. */
export async function retainedPerRun(count: number, fill: (count: number) => Promise<{ size: number }>): Promise<number> {
	const before = await settledHeap();
	let store: { size: number } | undefined = await fill(count);
	const after = await settledHeap();
	if (store.size !== count) throw new Error(`expected ${count} records, found ${store.size}`);
	store = undefined;
	return (after - before) / count;
}

export async function measureHeap(count: number, rounds: number, log: (line: string) => void): Promise<HeapResult> {
	const bytes = { runledger: [] as number[], naive: [] as number[] };
	for (let round = 0; round < rounds; round++) {
		const line: string[] = [];
		for (const subject of rotate(subjects, round)) {
			const perRun = await retainedPerRun(count, subject.fill);
			bytes[subject.key].push(perRun);
			line.push(`${subject.key} ${perRun.toFixed(0)}`);
		}
		log(`  round ${round + 1}/${rounds}: ${line.join(', ')} bytes/run`);
	}
	return { count, rounds, runledger: summarize(bytes.runledger), naive: summarize(bytes.naive) };
}

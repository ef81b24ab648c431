/**
 * The soak driver shared by the soak files: runs a fixed mix of tasks through a manager in
 * batches (start a batch, `waitAll`), and takes a snapshot — heap after a full GC, listener
 * counts, active handles — at a checkpoint and at the end, so that a leak per run shows as growth.
 *
 * Sizes: `RUNLEDGER_SUITE=full` (`npm run test:soak`, CI's full step) runs 100,000 runs with the
 * checkpoint at 10,000; otherwise (`npm test`) 20,000 with the checkpoint at 2,000.
 */
import { expect } from 'vitest';

import type { BackgroundTaskManager, RunledgerError } from '../../src/index.js';

export const FULL = process.env.RUNLEDGER_SUITE === 'full';
/** Runs processed in all. */
export const TOTAL = FULL ? 100_000 : 20_000;
/** The first snapshot is taken after this many runs; the second after TOTAL. */
export const CHECKPOINT = TOTAL / 10;
/** Runs started at once, then awaited with `waitAll`: keeps the test's own memory bounded. */
export const BATCH = 1_000;
/** Heap after GC at TOTAL may be at most this much of the heap at CHECKPOINT. */
export const HEAP_TOLERANCE = 1.1;
/**
 * "Heap at N runs" is the largest heap after GC seen after each batch of the last HEAP_WINDOW runs
 * up to N. One sample is not enough: the memory registry's indexes compact once their dead entries
 * outnumber the live ones, so its heap is a sawtooth (±0.8 MB around 17.8 MB at maxRuns 5,000),
 * and a single sample at 10,000 taken low and one at 100,000 taken high differ by 10 % with no leak.
 * The window is as long as the memory registry's cap, which covers one full tooth.
 */
export const HEAP_WINDOW = CHECKPOINT / 2;

/** Whether the batch that brought the count to `done` is among the last HEAP_WINDOW runs before `at`. */
export const inHeapWindow = (done: number, at: number): boolean => done > at - HEAP_WINDOW && done <= at;

/** `12,345` */
export const fmt = (value: number): string => value.toLocaleString('en-US');
/** `12.3 MB` */
export const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MB`;

/** What each run does, by its index: 50 % complete, 30 % throw, 20 % are cancelled (half while queued, half after a turn). */
export type RunKind = 'complete' | 'throw' | 'cancel-at-once' | 'cancel-later';

export function kindOf(index: number): RunKind {
	const slot = index % 10;
	if (slot < 5) return 'complete';
	if (slot < 8) return 'throw';
	return slot === 8 ? 'cancel-at-once' : 'cancel-later';
}

/** Terminal events and `error` events seen by the soak, as counts only (no per-run state kept). */
export interface Outcomes {
	completed: number;
	failed: number;
	cancelled: number;
	errors: number;
	/** The first few `error` events, for the failure message. */
	readonly firstErrors: string[];
}

/** Counts the manager's terminal and error events. Its listeners are registered once, before the first snapshot. */
export function countOutcomes(manager: BackgroundTaskManager): Outcomes {
	const outcomes: Outcomes = { completed: 0, failed: 0, cancelled: 0, errors: 0, firstErrors: [] };
	manager.on('completed', () => void outcomes.completed++);
	manager.on('failed', () => void outcomes.failed++);
	manager.on('cancelled', () => void outcomes.cancelled++);
	manager.on('error', (error: RunledgerError) => {
		outcomes.errors++;
		if (outcomes.firstErrors.length < 5) outcomes.firstErrors.push(`${error.name}: ${error.message}`);
	});
	return outcomes;
}

const waitForAbort = (signal: AbortSignal): Promise<never> =>
	new Promise<never>((_, reject) => {
		if (signal.aborted) reject(signal.reason as Error);
		else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
	});

/**
 * Starts runs `start` … `start + size - 1`, cancels the ones to cancel, and waits until every one
 * has settled and been written. Returns when the batch is done.
 */
export async function runBatch(manager: BackgroundTaskManager, start: number, size: number): Promise<void> {
	const later: string[] = [];
	const cancels: Array<Promise<boolean>> = [];
	for (let index = start; index < start + size; index++) {
		const kind = kindOf(index);
		const input = { moduleId: `module-${index % 4}`, itemId: `item-${index % 10}`, parameters: { index } };
		switch (kind) {
			case 'complete':
				manager.startTask(input, async ({ reportProgress }) => {
					reportProgress(10, 'started');
					await Promise.resolve();
					reportProgress(90, 'almost');
					return { index, ok: true };
				});
				break;
			case 'throw':
				manager.startTask(input, async () => {
					await Promise.resolve();
					throw new Error(`task ${index} failed on purpose`);
				});
				break;
			case 'cancel-at-once':
				cancels.push(manager.cancelTask(manager.startTask(input, ({ signal }) => waitForAbort(signal)), 'soak: while queued'));
				break;
			case 'cancel-later':
				later.push(manager.startTask(input, ({ signal }) => waitForAbort(signal)));
				break;
		}
	}

	// One macrotask turn: the batch starts (up to the concurrency limit), then the rest of the cancels go out.
	await new Promise((resolve) => setImmediate(resolve));
	for (const runId of later) cancels.push(manager.cancelTask(runId, 'soak: after a turn'));
	const cancelled = await Promise.all(cancels);
	expect(cancelled.every(Boolean), 'every cancel of the batch cancelled its run').toBe(true);

	const report = await manager.waitAll({ timeoutMs: 120_000 });
	expect(report.pending, `runs of batch ${fmt(start)}… still pending`).toEqual([]);
}

/** Runs every pending full garbage collection (the soak project runs with --expose-gc), with turns in between for finalizers. */
export async function settledHeapUsed(): Promise<number> {
	const gc = globalThis.gc;
	if (gc === undefined) throw new Error('global.gc is missing: the soak project must run with execArgv --expose-gc');
	for (let pass = 0; pass < 4; pass++) {
		gc();
		await new Promise((resolve) => setImmediate(resolve));
	}
	return process.memoryUsage().heapUsed;
}

/** Counts by name, in key order. */
export function countBy(names: readonly string[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const name of [...names].sort()) counts[name] = (counts[name] ?? 0) + 1;
	return counts;
}

interface Emitter {
	eventNames(): Array<string | symbol>;
	listenerCount(event: string | symbol): number;
}

/** Listener counts per event of an emitter (Node's or eventemitter3's), events without listeners left out. */
export function listenerCounts(emitter: Emitter): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const event of emitter.eventNames()) {
		const count = emitter.listenerCount(event);
		if (count > 0) counts[String(event)] = count;
	}
	return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/** Everything compared between the checkpoint and the end. */
export interface Snapshot {
	readonly runs: number;
	/** The largest heap after GC of the window (see HEAP_WINDOW), this snapshot's own included. */
	readonly heapUsed: number;
	/** Every heap sample of the window, in MB, for the figures. */
	readonly heapSamples: readonly number[];
	readonly processListeners: Record<string, number>;
	readonly managerListeners: Record<string, number>;
	/** `process.getActiveResourcesInfo()` by type: ref'd timers, sockets, pipes… */
	readonly resources: Record<string, number>;
	readonly activeTasks: number;
	readonly pendingWrites: number;
}

/**
 * Takes a snapshot of a quiet manager (every batch awaited). `heapSamples`: the heap after GC
 * taken after the earlier batches of the window; this one's is added to them.
 */
export async function snapshot(manager: BackgroundTaskManager, runs: number, heapSamples: readonly number[]): Promise<Snapshot> {
	await manager.flush();
	const samples = [...heapSamples, await settledHeapUsed()];
	const stats = manager.getStats();
	return {
		runs,
		heapUsed: Math.max(...samples),
		heapSamples: samples.map((bytes) => Math.round((bytes / 1_048_576) * 10) / 10),
		processListeners: listenerCounts(process as unknown as Emitter),
		managerListeners: listenerCounts(manager as unknown as Emitter),
		resources: countBy(process.getActiveResourcesInfo()),
		activeTasks: manager.getActiveTaskCount(),
		pendingWrites: stats.pendingWrites,
	};
}

/** The checks common to every registry: heap within tolerance, nothing left active, listener and handle counts equal. */
export function expectNoGrowth(first: Snapshot, last: Snapshot): void {
	expect.soft(last.heapUsed, `peak heap after GC over the ${fmt(HEAP_WINDOW)} runs up to ${fmt(last.runs)} (${mb(last.heapUsed)}; samples ${last.heapSamples.join(', ')} MB) within ${Math.round(HEAP_TOLERANCE * 100)} % of that up to ${fmt(first.runs)} (${mb(first.heapUsed)}; samples ${first.heapSamples.join(', ')} MB)`).toBeLessThanOrEqual(first.heapUsed * HEAP_TOLERANCE);
	expect.soft(last.processListeners, 'process listeners').toEqual(first.processListeners);
	expect.soft(last.managerListeners, 'manager listeners').toEqual(first.managerListeners);
	expect.soft(last.resources, 'active resources (process.getActiveResourcesInfo)').toEqual(first.resources);
	expect.soft([first.activeTasks, last.activeTasks], 'active tasks at both snapshots').toEqual([0, 0]);
	expect.soft([first.pendingWrites, last.pendingWrites], 'pending writes at both snapshots').toEqual([0, 0]);
}

/** The expected outcome counts of `total` runs. */
export function expectedOutcomes(total: number): { completed: number; failed: number; cancelled: number } {
	const counts = { completed: 0, failed: 0, cancelled: 0 };
	for (let slot = 0; slot < 10; slot++) {
		const runs = Math.floor(total / 10) + (slot < total % 10 ? 1 : 0);
		const kind = kindOf(slot);
		if (kind === 'complete') counts.completed += runs;
		else if (kind === 'throw') counts.failed += runs;
		else counts.cancelled += runs;
	}
	return counts;
}

/** `12.3 MB at 10,000 → 12.4 MB at 100,000 (+0.8 %), peak after GC over the last N runs each` */
export function heapFigure(first: Snapshot, last: Snapshot): string {
	const change = (last.heapUsed / first.heapUsed - 1) * 100;
	return `peak heap after GC over the last ${fmt(HEAP_WINDOW)} runs: ${mb(first.heapUsed)} at ${fmt(first.runs)} → ${mb(last.heapUsed)} at ${fmt(last.runs)} (${change >= 0 ? '+' : ''}${change.toFixed(1)} %; samples ${first.heapSamples.join(', ')} → ${last.heapSamples.join(', ')} MB)`;
}

/** `{ a: 1, b: 2 }` as `a 1, b 2`. */
export const counts = (record: Record<string, number>): string =>
	Object.entries(record)
		.map(([key, value]) => `${key} ${value}`)
		.join(', ') || 'none';

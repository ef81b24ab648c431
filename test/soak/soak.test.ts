/**
 * Soak on the memory registry: 100,000 runs (20,000 under `npm test`) through one manager into a
 * MemoryRunRegistry capped at maxRuns, in batches of 1,000. Half complete (with progress), 30 %
 * throw, 20 % are cancelled (half while queued, half after a turn). Whatever one run leaves behind
 * in the manager, the registry or the process shows up between the snapshot at 10 % and the one
 * at the end: heap after GC, listeners, ref'd handles, the registry's size.
 */
import { describe, expect, it } from 'vitest';

import { BackgroundTaskManager, MemoryRunRegistry } from '../../src/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import {
	BATCH,
	CHECKPOINT,
	HEAP_TOLERANCE,
	HEAP_WINDOW,
	TOTAL,
	countOutcomes,
	counts,
	expectNoGrowth,
	expectedOutcomes,
	fmt,
	heapFigure,
	inHeapWindow,
	runBatch,
	settledHeapUsed,
	snapshot,
	type Snapshot,
} from './soak-support.js';

/** The registry's cap: half the checkpoint, so that it is full at both snapshots (and as long as the heap window). */
const MAX_RUNS = CHECKPOINT / 2;

describe('soak: MemoryRunRegistry', () => {
	failOnUnhandledErrorsAfterEach();

	it(`${fmt(TOTAL)} runs (50 % complete, 30 % throw, 20 % cancelled) into maxRuns ${fmt(MAX_RUNS)}: peak heap after GC over the last ${fmt(HEAP_WINDOW)} runs at ${fmt(TOTAL)} within ${Math.round(HEAP_TOLERANCE * 100)} % of that at ${fmt(CHECKPOINT)}, registry at its cap, listeners and handles unchanged`, async () => {
		const registry = new MemoryRunRegistry({ maxRuns: MAX_RUNS });
		const manager = new BackgroundTaskManager(registry, { concurrency: 200 });
		const outcomes = countOutcomes(manager);
		const startedAt = performance.now();
		let first: Snapshot | undefined;
		let firstSize = 0;
		const heapSamples: number[] = [];
		try {
			for (let start = 0; start < TOTAL; start += BATCH) {
				await runBatch(manager, start, BATCH);
				const done = start + BATCH;
				if (done === CHECKPOINT) {
					first = await snapshot(manager, CHECKPOINT, heapSamples.splice(0));
					firstSize = registry.size;
				} else if (done !== TOTAL && (inHeapWindow(done, CHECKPOINT) || inHeapWindow(done, TOTAL))) {
					await manager.flush();
					heapSamples.push(await settledHeapUsed());
				}
			}
			const last = await snapshot(manager, TOTAL, heapSamples.splice(0));
			const seconds = (performance.now() - startedAt) / 1000;
			const expected = expectedOutcomes(TOTAL);
			if (first === undefined) throw new Error('no checkpoint snapshot');

			console.log(
				`soak memory: ${fmt(TOTAL)} runs in ${seconds.toFixed(1)} s (${fmt(Math.round(TOTAL / seconds))}/s): ` +
					`${fmt(outcomes.completed)} completed, ${fmt(outcomes.failed)} failed, ${fmt(outcomes.cancelled)} cancelled, ${outcomes.errors} error events; ` +
					`${heapFigure(first, last)}; ` +
					`registry ${fmt(firstSize)} → ${fmt(registry.size)} runs (maxRuns ${fmt(MAX_RUNS)}); ` +
					`process listeners ${counts(first.processListeners)} → ${counts(last.processListeners)}; ` +
					`manager listeners ${counts(first.managerListeners)} → ${counts(last.managerListeners)}; ` +
					`active resources ${counts(first.resources)} → ${counts(last.resources)}`,
			);

			expect.soft({ completed: outcomes.completed, failed: outcomes.failed, cancelled: outcomes.cancelled }, 'terminal events').toEqual(expected);
			expect.soft(outcomes.firstErrors, 'error events').toEqual([]);
			expect.soft(manager.getStats(), 'manager counts').toMatchObject({ ...expected, queued: 0, running: 0, draining: 0, pendingWrites: 0 });
			expect.soft([firstSize, registry.size], 'registry size at both snapshots: at its cap').toEqual([MAX_RUNS, MAX_RUNS]);
			// The newest runs are the ones kept; what the registry holds is consistent with its indexes.
			const page = await registry.listRuns({ limit: 10_000 });
			expect.soft(page.runs.length, 'runs listed').toBe(MAX_RUNS);
			expect.soft(page.runs.every((run) => (run.parameters as { index: number }).index >= TOTAL - MAX_RUNS), 'only the newest runs are kept').toBe(true);
			const byStatus = { completed: 0, failed: 0, cancelled: 0 };
			for (const run of page.runs) byStatus[run.status as keyof typeof byStatus]++;
			expect.soft(byStatus, 'statuses of the runs kept').toEqual(expectedOutcomes(MAX_RUNS));
			expectNoGrowth(first, last);
		} finally {
			await manager.shutdown({ graceMs: 0 });
		}
	});
});

/**
 * BackgroundTaskManager on a registry with `applyWrites` (a custom registry, as users write them,
 * delegating to a real MemoryRunRegistry through its public methods only): the changes of one
 * tick go out as batches, split in two halves when many runs changed, and every run lands.
 */
import { describe, expect, it } from 'vitest';
import { MemoryRunRegistry, type Run, type RunPage, type RunPatch, type RunQuery, type RunRegistry, type RunWrite, type RunWriteResult, type UpdateRunOptions } from '../src/index.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { controlledTask } from './support/tasks.js';

shutdownManagersAfterEach();

// Records the size of every applyWrites batch; everything else goes straight to the inner registry.
class BatchRecordingRegistry implements RunRegistry {
	readonly inner = new MemoryRunRegistry({ maxRuns: Number.POSITIVE_INFINITY });
	readonly batches: number[] = [];

	async applyWrites(writes: readonly RunWrite[]): Promise<RunWriteResult[]> {
		this.batches.push(writes.length);
		return this.inner.applyWrites(writes);
	}

	addRun(run: Run): Promise<void> {
		return this.inner.addRun(run);
	}

	getRun(runId: string): Promise<Run | undefined> {
		return this.inner.getRun(runId);
	}

	updateRun(runId: string, patch: RunPatch, options?: UpdateRunOptions): Promise<Run | undefined> {
		return this.inner.updateRun(runId, patch, options);
	}

	listRuns(query?: RunQuery): Promise<RunPage> {
		return this.inner.listRuns(query);
	}

	deleteRun(runId: string): Promise<boolean> {
		return this.inner.deleteRun(runId);
	}

	cleanupOldRuns(maxAgeMs: number): Promise<number> {
		return this.inner.cleanupOldRuns(maxAgeMs);
	}
}

describe('batched writes', () => {
	it('sends the adds of 10 runs started in one tick as one applyWrites batch', async () => {
		const registry = new BatchRecordingRegistry();
		const { manager } = createManager({ concurrency: 1 }, registry);
		const blocker = controlledTask();
		manager.startTask({ moduleId: 'm' }, blocker.fn);
		for (let index = 0; index < 9; index++) manager.startTask({ moduleId: 'm' }, async () => index);
		await manager.flush();
		expect(registry.batches[0]).toBe(10);
	});

	it('sends the adds of 40 runs started in one tick as two batches of 20, and stores every run', async () => {
		const registry = new BatchRecordingRegistry();
		const { manager } = createManager({ concurrency: 1 }, registry);
		const blocker = controlledTask();
		const ids = [manager.startTask({ moduleId: 'm' }, blocker.fn)];
		for (let index = 1; index < 40; index++) ids.push(manager.startTask({ moduleId: 'm' }, async () => index));
		await manager.flush();
		expect(registry.batches.slice(0, 2)).toEqual([20, 20]);
		expect((await registry.inner.listRuns({ limit: 100 })).runs).toHaveLength(40);

		blocker.done.resolve(0);
		await manager.waitAll();
		const stored = await Promise.all(ids.map((runId) => registry.inner.getRun(runId)));
		expect(stored.map((run) => run?.status)).toEqual(ids.map(() => 'completed'));
		expect(stored.map((run) => run?.result)).toEqual(ids.map((_, index) => index));
	});
});

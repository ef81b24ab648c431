/**
 * BackgroundTaskManager on a registry with `applyWrites` (a custom registry, as users write them,
 * forwarding to a real MemoryRunRegistry through its public methods only): the changes of one
 * tick go out as batches, split in two halves when many runs changed, and every run lands.
 */
import { describe, expect, it } from 'vitest';
import { MemoryRunRegistry, type RunWrite, type RunWriteResult } from '../src/index.js';
import { ForwardingRegistry } from './support/forwarding-registry.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { controlledTask } from './support/tasks.js';

shutdownManagersAfterEach();

// Records the size of every applyWrites batch; everything goes on to the memory registry.
class BatchRecordingRegistry extends ForwardingRegistry {
	readonly batches: number[] = [];

	constructor() {
		super(new MemoryRunRegistry({ maxRuns: Number.POSITIVE_INFINITY }));
	}

	override applyWrites(writes: readonly RunWrite[]): Promise<RunWriteResult[]> {
		this.batches.push(writes.length);
		return super.applyWrites(writes);
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

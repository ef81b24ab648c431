/**
 * A RunRegistry that forwards every method, the optional ones included, to a MemoryRunRegistry
 * and nothing else: the memory registry's in-process capabilities (synchronous writes, finding a
 * manager's runs) are not passed on, so a manager on it takes the path of any other registry.
 * Tests subclass it to watch or to break one method.
 */
import { MemoryRunRegistry } from '../../src/memory-registry.js';
import type { RunPage, RunQuery, RunRegistry, RunWrite, RunWriteResult, UpdateRunOptions } from '../../src/registry.js';
import type { Run, RunPatch } from '../../src/run.js';

export class ForwardingRegistry implements RunRegistry {
	readonly inner: MemoryRunRegistry;

	constructor(inner: MemoryRunRegistry = new MemoryRunRegistry()) {
		this.inner = inner;
	}

	addRun(run: Run): Promise<void> {
		return this.inner.addRun(run);
	}

	getRun(runId: string): Promise<Run | undefined> {
		return this.inner.getRun(runId);
	}

	getRuns(runIds: readonly string[]): Promise<Array<Run | undefined>> {
		return this.inner.getRuns(runIds);
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

	applyWrites(writes: readonly RunWrite[]): Promise<RunWriteResult[]> {
		return this.inner.applyWrites(writes);
	}

	heartbeat(ownerId: string, ttlMs: number): Promise<void> {
		return this.inner.heartbeat(ownerId, ttlMs);
	}

	releaseOwner(ownerId: string): Promise<void> {
		return this.inner.releaseOwner(ownerId);
	}

	reapOrphans(): Promise<string[]> {
		return this.inner.reapOrphans();
	}
}

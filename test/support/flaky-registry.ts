/**
 * A RunRegistry that delegates to a real MemoryRunRegistry but fails writes while a switch is
 * on: `addRun` and `updateRun` throw, before the write (`'before'`, the write never happens)
 * or after it (`'after'`, the write landed but the caller is told it failed, as after a lost reply).
 */
import {
	MemoryRunRegistry,
	type Run,
	type RunPage,
	type RunPatch,
	type RunQuery,
	type RunRegistry,
	type UpdateRunOptions,
} from '../../src/index.js';

export type FailureMode = 'before' | 'after';

export class RegistryDownError extends Error {
	override name = 'RegistryDownError';
}

export class FlakyRegistry implements RunRegistry {
	readonly inner: MemoryRunRegistry;
	/** While true, addRun and updateRun throw a RegistryDownError. */
	failing = false;
	mode: FailureMode = 'before';
	/** Which writes fail while `failing` is on. */
	failOps: ReadonlySet<'addRun' | 'updateRun'> = new Set(['addRun', 'updateRun']);
	readonly calls = { addRun: 0, updateRun: 0, getRun: 0, listRuns: 0, deleteRun: 0, cleanupOldRuns: 0 };
	readonly failures = { addRun: 0, updateRun: 0 };

	constructor(inner: MemoryRunRegistry = new MemoryRunRegistry()) {
		this.inner = inner;
	}

	async addRun(run: Run): Promise<void> {
		this.calls.addRun++;
		if (this.#shouldFail('addRun') && this.mode === 'before') this.#fail('addRun');
		await this.inner.addRun(run);
		if (this.#shouldFail('addRun') && this.mode === 'after') this.#fail('addRun');
	}

	async getRun(runId: string): Promise<Run | undefined> {
		this.calls.getRun++;
		return this.inner.getRun(runId);
	}

	async updateRun(runId: string, patch: RunPatch, options?: UpdateRunOptions): Promise<Run | undefined> {
		this.calls.updateRun++;
		if (this.#shouldFail('updateRun') && this.mode === 'before') this.#fail('updateRun');
		const updated = await this.inner.updateRun(runId, patch, options);
		if (this.#shouldFail('updateRun') && this.mode === 'after') this.#fail('updateRun');
		return updated;
	}

	async listRuns(query?: RunQuery): Promise<RunPage> {
		this.calls.listRuns++;
		return this.inner.listRuns(query);
	}

	async deleteRun(runId: string): Promise<boolean> {
		this.calls.deleteRun++;
		return this.inner.deleteRun(runId);
	}

	async cleanupOldRuns(maxAgeMs: number): Promise<number> {
		this.calls.cleanupOldRuns++;
		return this.inner.cleanupOldRuns(maxAgeMs);
	}

	#shouldFail(op: 'addRun' | 'updateRun'): boolean {
		return this.failing && this.failOps.has(op);
	}

	#fail(op: 'addRun' | 'updateRun'): never {
		this.failures[op]++;
		throw new RegistryDownError(`registry is down (${op})`);
	}
}

/**
 * Sends a manager's changes to its registry: one write at a time per run and in order,
 * changes that pile up while a write is in flight merged into the next one, every update a
 * compare-and-set against the status this manager last stored, failures retried with backoff.
 */
import type { Execution } from './execution.js';
import { RegistryError } from './errors.js';
import type { RunRegistry } from './registry.js';
import type { Run, RunPatch, RunStatus } from './run.js';

export interface RunWriterHost {
	/** Every change of `execution` is written, or will never be (see `detached`). */
	onWritten(execution: Execution): void;
	/** The registry holds something else than this manager wrote: `stored`, or nothing. No more writes follow. */
	onConflict(execution: Execution, stored: Run | undefined): void;
	/** A write of `execution` landed; `execution.stored` is what the registry holds now. */
	onStored(execution: Execution): void;
	/** A write failed and will be retried (or, when `execution.detached`, never will be). */
	onWriteError(error: RegistryError, execution: Execution): void;
	/**
	 * The registry refused a write as invalid (a `ValidationError`). Returns true when it changed
	 * `execution.view` so that writing it again may succeed.
	 */
	onRefused(error: RegistryError, execution: Execution): boolean;
}

const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5000;

export class RunWriter {
	readonly #registry: RunRegistry;
	readonly #host: RunWriterHost;
	// Runs whose writes are pending, in flight or awaiting a retry.
	readonly #busy = new Set<Execution>();
	// Once closed, nothing more is sent and retries are dropped.
	#closed = false;
	// Runs whose writes start in the next microtask: deferred so that the changes of one tick go
	// out as one write (a run started on a free slot is added as RUNNING in a single round trip).
	#scheduled: Execution[] = [];
	readonly #startScheduled = (): void => {
		const scheduled = this.#scheduled;
		this.#scheduled = [];
		for (const execution of scheduled) void this.#drain(execution);
	};

	constructor(registry: RunRegistry, host: RunWriterHost) {
		this.#registry = registry;
		this.#host = host;
	}

	/** How many runs have writes outstanding. */
	get size(): number {
		return this.#busy.size;
	}

	/** The runs with writes outstanding. */
	busy(): IterableIterator<Execution> {
		return this.#busy.values();
	}

	/** Queues `patch` after the run's earlier changes. The first write adds the whole current view. */
	enqueue(execution: Execution, patch: RunPatch): void {
		if (execution.detached || this.#closed) return;
		execution.pending = execution.pending === undefined ? patch : Object.assign(execution.pending, patch);
		if (!execution.writing && execution.retryTimer === undefined && !this.#busy.has(execution)) {
			this.#busy.add(execution);
			this.#scheduled.push(execution);
			if (this.#scheduled.length === 1) queueMicrotask(this.#startScheduled);
		}
	}

	/** Stops writing: retries are dropped and what is still pending is given up. Returns the runs given up. */
	close(): string[] {
		this.#closed = true;
		const abandoned: string[] = [];
		for (const execution of this.#busy) {
			abandoned.push(execution.runId);
			if (execution.retryTimer !== undefined) clearTimeout(execution.retryTimer);
			execution.retryTimer = undefined;
			execution.pending = undefined;
		}

		this.#busy.clear();
		return abandoned;
	}

	async #drain(execution: Execution): Promise<void> {
		execution.writing = true;
		try {
			while (execution.pending !== undefined && !execution.detached && !this.#closed) {
				const patch = execution.pending;
				execution.pending = undefined;
				let conflict: { stored: Run | undefined } | undefined;
				try {
					conflict = await this.#apply(execution, patch);
				} catch (error) {
					if (this.#closed) return;
					const operation = execution.stored === undefined ? 'addRun' : 'updateRun';
					if (isNamed(error, 'ValidationError')) {
						// The registry refuses what the run holds (a result it cannot store, say): trying
						// again cannot help. The host may change the run once (drop the result); the whole
						// view is then written again, and a second refusal ends the run's writes.
						const refusal = new RegistryError(operation, execution.runId, error);
						if (!execution.refused && this.#host.onRefused(refusal, execution)) {
							execution.refused = true;
							const arrived = execution.pending as RunPatch | undefined;
							execution.pending = arrived === undefined ? patchOf(execution.view) : { ...patchOf(execution.view), ...arrived };
							continue;
						}

						execution.detached = true;
						execution.pending = undefined;
						this.#host.onWriteError(refusal, execution);
						return;
					}

					// Put the patch back in front of whatever arrived meanwhile, and try again later.
					const arrived = execution.pending as RunPatch | undefined;
					execution.pending = arrived === undefined ? patch : { ...patch, ...arrived };
					this.#retryLater(execution);
					this.#host.onWriteError(new RegistryError(operation, execution.runId, error), execution);
					return;
				}

				execution.attempts = 0;
				if (conflict === undefined) {
					this.#host.onStored(execution);
				} else {
					execution.detached = true;
					execution.pending = undefined;
					this.#host.onConflict(execution, conflict.stored);
				}
			}
		} finally {
			execution.writing = false;
			if (!execution.isWriting && this.#busy.delete(execution)) this.#host.onWritten(execution);
		}
	}

	#retryLater(execution: Execution): void {
		const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** execution.attempts) * (0.5 + Math.random() / 2);
		execution.attempts++;
		// Not unref'd: an unwritten state is pending work, like a run's own timer. `shutdown()` clears it.
		execution.retryTimer = setTimeout(() => {
			execution.retryTimer = undefined;
			void this.#drain(execution);
		}, delay);
	}

	// Resolves undefined when the patch is stored, or the conflicting record when the registry holds another state.
	async #apply(execution: Execution, patch: RunPatch): Promise<{ stored: Run | undefined } | undefined> {
		if (execution.stored === undefined && !execution.adopted) return this.#add(execution);

		// An adopted record was added QUEUED by the caller.
		let base = execution.stored ?? 'queued';
		if (base === 'queued' && patch.status === 'completed') {
			// The run started and ended before its start was written: queued → completed is not a
			// legal step, so the start goes first.
			const { status: _status, result: _result, completedAt: _completedAt, ...start } = patch;
			const started = await this.#update(execution, { ...start, status: 'running' }, base);
			if (started === undefined) {
				const conflict = await this.#conflict(execution, 'running');
				if (conflict !== undefined) return conflict;
			}

			base = 'running';
		}

		const updated = await this.#update(execution, patch, base);
		if (updated === undefined) return this.#conflict(execution, patch.status);
		return undefined;
	}

	// The first write of a run: the whole current view, in whatever status it has reached.
	async #add(execution: Execution): Promise<{ stored: Run | undefined } | undefined> {
		const sent = execution.view;
		try {
			await this.#registry.addRun(sent);
		} catch (error) {
			if (!isNamed(error, 'RunExistsError')) throw error;
			const current = await this.#registry.getRun(execution.runId);
			// After a failed attempt our own add may have landed: a record with our creation time is ours.
			if (execution.attempts > 0 && current !== undefined && current.createdAt === sent.createdAt && current.moduleId === sent.moduleId) {
				execution.stored = current.status;
				return current.status === execution.view.status ? undefined : this.#apply(execution, patchOf(execution.view));
			}

			return { stored: current };
		}

		execution.stored = sent.status;
		return undefined;
	}

	async #update(execution: Execution, patch: RunPatch, ifStatus: RunStatus): Promise<Run | undefined> {
		let updated: Run | undefined;
		try {
			updated = await this.#registry.updateRun(execution.runId, patch, { ifStatus });
		} catch (error) {
			// The registry refused the step: what it holds is not what this manager wrote.
			if (!isNamed(error, 'IllegalTransitionError')) throw error;
		}

		if (updated !== undefined) execution.stored = updated.status;
		return updated;
	}

	// A compare-and-set missed: finds out whether the registry really holds another state.
	async #conflict(execution: Execution, attempted: RunStatus | undefined): Promise<{ stored: Run | undefined } | undefined> {
		const current = await this.#registry.getRun(execution.runId);
		if (current === undefined) {
			// The record is gone — never added by the caller, deleted, expired, or lost with the
			// registry's data: this manager still runs it, so it writes it again, whole.
			execution.adopted = false;
			execution.stored = undefined;
			return this.#add(execution);
		}

		// After a failed attempt, the write may have landed although the registry reported an error.
		if (
			execution.attempts > 0 &&
			current !== undefined &&
			attempted !== undefined &&
			current.status === attempted &&
			current.createdAt === execution.view.createdAt
		) {
			execution.stored = current.status;
			return undefined;
		}

		return { stored: current };
	}
}

// Errors are matched by name: a registry may come from another copy of this package.
function isNamed(error: unknown, name: string): boolean {
	return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === name;
}

function patchOf(view: Run): RunPatch {
	const patch: RunPatch = { status: view.status };
	if (view.progress !== undefined) patch.progress = view.progress;
	if (view.result !== undefined) patch.result = view.result;
	if (view.error !== undefined) patch.error = view.error;
	if (view.startedAt !== undefined) patch.startedAt = view.startedAt;
	if (view.completedAt !== undefined) patch.completedAt = view.completedAt;
	if (view.ownerId !== undefined) patch.ownerId = view.ownerId;
	return patch;
}

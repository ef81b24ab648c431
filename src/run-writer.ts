/**
 * Sends a manager's changes to its registry: one write at a time per run and in order,
 * changes that pile up while a write is in flight merged into the next one, every update a
 * compare-and-set against the status this manager last stored, failures retried with backoff.
 *
 * The changes of one tick go out together: through `registry.applyWrites` as one batch when the
 * registry has it (one call, one round trip for every run changed in that tick), else as one call
 * per run. A registry that can apply writes synchronously (the in-memory one) gets each change
 * at once instead. Anything unusual about a write (a missed compare-and-set, a refusal, a lost
 * connection) is sorted out per run, on the slow path.
 */
import type { Execution } from './execution.js';
import { RegistryError } from './errors.js';
import type { RunRegistry, RunWrite, RunWriteResult } from './registry.js';
import { applyWriteNow, withAddToken, type WriteNow } from './registry-internals.js';
import { generateRunId } from './run-id.js';
import type { Run, RunPatch, RunStatus } from './run.js';

export interface RunWriterHost {
	/** Every change of `execution` is written, or will never be (see `detached`). */
	onWritten(execution: Execution): void;
	/**
	 * The registry holds something else than this manager wrote: `stored`, or nothing. `ours` tells
	 * whether `stored` is this run's record (ended elsewhere: cancelled, reaped) rather than another
	 * run's under the same id. No more writes follow.
	 */
	onConflict(execution: Execution, stored: Run | undefined, ours: boolean): void;
	/** A write of `execution` landed; `execution.stored` is what the registry holds now. */
	onStored(execution: Execution): void;
	/** A write failed and will be retried (or, when `execution.detached`, never will be). */
	onWriteError(error: RegistryError, execution: Execution): void;
	/**
	 * The registry refused a write as invalid (a `ValidationError` or a `ResultTooLargeError`).
	 * Returns true when it changed `execution.view` so that writing it again may succeed.
	 */
	onRefused(error: RegistryError, execution: Execution): boolean;
}

const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5000;
// Errors by which a registry refuses what a run holds: writing the same again cannot help.
const REFUSALS = new Set(['ValidationError', 'ResultTooLargeError']);
// From this many runs changed in one tick, their writes go out as two batches (see #sendBatch).
const SPLIT_AT = 16;

// One run's part of a batch: its writes are `writes[first]` up to `writes[first + count - 1]`.
interface BatchEntry {
	readonly execution: Execution;
	readonly patch: RunPatch;
	readonly first: number;
	readonly count: 1 | 2;
}

export class RunWriter {
	readonly #registry: RunRegistry;
	readonly #host: RunWriterHost;
	// The registry's synchronous entry point, when it has one: changes are then written as they happen.
	readonly #now: WriteNow | undefined;
	// Runs with writes pending, in flight or awaiting a retry (each has `execution.busy` set).
	#busy = 0;
	// Once closed, nothing more is sent and retries are dropped.
	#closed = false;
	// Runs whose writes go out at the end of this tick: deferred so that the changes of one tick
	// are one write per run (a run started on a free slot is added as RUNNING in one write) and
	// one batch for all runs.
	#scheduled: Execution[] = [];
	readonly #flushScheduled = (): void => {
		const scheduled = this.#scheduled;
		this.#scheduled = [];
		if (this.#closed) return;
		if (this.#registry.applyWrites === undefined) {
			for (const execution of scheduled) void this.#drain(execution);
		} else {
			this.#sendBatch(scheduled);
		}
	};

	constructor(registry: RunRegistry, host: RunWriterHost) {
		this.#registry = registry;
		this.#host = host;
		const now = (registry as Partial<Record<typeof applyWriteNow, WriteNow>>)[applyWriteNow];
		this.#now = typeof now === 'function' ? now.bind(registry) : undefined;
	}

	/** How many runs have writes outstanding. */
	get size(): number {
		return this.#busy;
	}

	/** Queues `patch` after the run's earlier changes. The first write adds the whole current view. */
	enqueue(execution: Execution, patch: RunPatch): void {
		if (execution.detached || this.#closed) return;
		if (execution.busy) {
			execution.pending = execution.pending === undefined ? patch : Object.assign(execution.pending, patch);
			return;
		}

		// Not busy: nothing is pending.
		if (this.#now !== undefined) {
			this.#writeNow(execution, patch, this.#now);
			return;
		}

		execution.pending = patch;
		execution.busy = true;
		this.#busy++;
		this.#schedule(execution);
	}

	/**
	 * Stops writing: retries are dropped and what is still pending is given up. Returns the ids of
	 * the runs given up, among `executions` (every run the host still holds).
	 */
	close(executions: Iterable<Execution>): string[] {
		this.#closed = true;
		const abandoned: string[] = [];
		for (const execution of executions) {
			if (!execution.busy) continue;
			abandoned.push(execution.runId);
			if (execution.retryTimer !== undefined) clearTimeout(execution.retryTimer);
			execution.retryTimer = undefined;
			execution.pending = undefined;
			execution.busy = false;
		}

		this.#busy = 0;
		return abandoned;
	}

	#schedule(execution: Execution): void {
		this.#scheduled.push(execution);
		if (this.#scheduled.length === 1) queueMicrotask(this.#flushScheduled);
	}

	// The run has nothing more to send: it leaves the busy count, and the host hears of it.
	#idle(execution: Execution): void {
		if (!execution.busy || execution.writing || execution.pending !== undefined || execution.retryTimer !== undefined) return;
		execution.busy = false;
		this.#busy--;
		this.#host.onWritten(execution);
	}

	// The fastest path, for a registry that writes synchronously: `patch` is written at once.
	// Anything but success goes to the slow path like a batch's would.
	#writeNow(execution: Execution, patch: RunPatch, now: WriteNow): void {
		const start = impliedStart(execution, patch);
		if (start !== undefined && !this.#applyNow(execution, patch, start, false, now)) return;
		if (!this.#applyNow(execution, patch, writeOf(execution, patch, start !== undefined), true, now)) return;
		execution.attempts = 0;
		this.#host.onStored(execution);
		// The host may have made a change meanwhile (written already, unless it went the slow way).
		if (!execution.busy) this.#host.onWritten(execution);
	}

	// One write of #writeNow (`last`: the last of `patch`'s); false when it went to the slow path.
	#applyNow(execution: Execution, patch: RunPatch, write: RunWrite, last: boolean, now: WriteNow): boolean {
		const result = now(write, execution);
		if (result.outcome !== 'applied') {
			execution.busy = true;
			this.#busy++;
			this.#slowPath(execution, patch, result, write, last);
			return false;
		}

		execution.stored = storedAfter(write, execution.stored);
		return true;
	}

	// The fast path: the runs changed in this tick go out in applyWrites calls — one, or two halves
	// when there are many. Two batches in flight keep the registry busy with one while the replies of
	// the other are handled here: with one, the runs whose start waits for its reply all get it at
	// once, start together, and the registry and this process take turns idling (lock-step).
	#sendBatch(executions: Execution[]): void {
		const half = executions.length >= SPLIT_AT ? executions.length >> 1 : executions.length;
		this.#sendPart(executions, 0, half);
		this.#sendPart(executions, half, executions.length);
	}

	#sendPart(executions: readonly Execution[], from: number, to: number): void {
		const writes: RunWrite[] = [];
		const entries: BatchEntry[] = [];
		for (let index = from; index < to; index++) {
			const execution = executions[index] as Execution;
			const patch = execution.pending;
			if (patch === undefined || execution.detached || execution.writing || execution.retryTimer !== undefined) {
				this.#idle(execution);
				continue;
			}

			execution.pending = undefined;
			execution.writing = true;
			const first = writes.length;
			entries.push({ execution, patch, first, count: putWrites(execution, patch, writes, first) });
		}

		if (writes.length === 0) return;
		let sent: Promise<RunWriteResult[]>;
		try {
			sent = this.#registry.applyWrites!(writes);
		} catch (error) {
			sent = Promise.reject(error);
		}

		sent.then(
			(results) => this.#settleBatch(entries, writes, results),
			(error: unknown) => this.#failBatch(entries, error),
		);
	}

	#settleBatch(entries: readonly BatchEntry[], writes: readonly RunWrite[], results: readonly RunWriteResult[]): void {
		for (const entry of entries) {
			const { execution, patch, first, count } = entry;
			execution.writing = false;
			if (this.#closed) continue;
			let failure: RunWriteResult | undefined;
			let failedAt = first;
			for (let index = first; index < first + count; index++) {
				const result = results[index];
				if (result?.outcome !== 'applied') {
					failure = result ?? { outcome: 'failed', error: new Error('applyWrites returned no result for this write') };
					failedAt = index;
					break;
				}

				execution.stored = storedAfter(writes[index] as RunWrite, execution.stored);
			}

			if (failure === undefined) {
				execution.attempts = 0;
				this.#host.onStored(execution);
				if (execution.pending !== undefined && !execution.detached) this.#schedule(execution);
				else this.#idle(execution);
				continue;
			}

			this.#slowPath(execution, patch, failure, writes[failedAt] as RunWrite, failedAt === first + count - 1);
		}
	}

	// A write of `patch` did not apply (`failed` is `failedWrite`, the patch's own write when `last`):
	// the run goes the slow way. A missed compare-and-set is looked into first; for anything else,
	// what did not land goes back in front of what arrived since and is sent again on its own.
	#slowPath(execution: Execution, patch: RunPatch, failure: RunWriteResult, failedWrite: RunWrite, last: boolean): void {
		if (failure.outcome === 'missed') {
			void this.#drain(execution, { patch, attempted: failedWrite.type === 'update' ? failedWrite.patch : undefined, last });
		} else {
			const arrived = execution.pending as RunPatch | undefined;
			execution.pending = arrived === undefined ? patch : { ...patch, ...arrived };
			void this.#drain(execution);
		}
	}

	// The outcome of the whole batch is unknown: every run of it is retried on its own, later.
	#failBatch(entries: readonly BatchEntry[], error: unknown): void {
		for (const { execution, patch } of entries) {
			execution.writing = false;
			if (this.#closed || execution.detached) continue;
			const arrived = execution.pending as RunPatch | undefined;
			execution.pending = arrived === undefined ? patch : { ...patch, ...arrived };
			this.#retryLater(execution);
			this.#host.onWriteError(new RegistryError(execution.stored === undefined ? 'addRun' : 'updateRun', execution.runId, error), execution);
		}
	}

	// The slow path: one run's writes, one call at a time. With `miss`, a compare-and-set of `patch`
	// (its last write when `last`, else the start written before it) has just missed in a batch:
	// what the registry holds is looked into before anything else is sent.
	async #drain(execution: Execution, miss?: { readonly patch: RunPatch; readonly attempted: RunPatch | undefined; readonly last: boolean }): Promise<void> {
		execution.writing = true;
		try {
			if (miss !== undefined) {
				const conflict = await this.#conflict(execution, miss.attempted);
				if (conflict !== undefined) {
					this.#detach(execution, conflict);
					return;
				}

				// Written again whole (the view holds the patch), or the write landed after all; when
				// what landed was the start of a terminal patch, the patch itself is still to send.
				if (!miss.last && miss.attempted !== undefined && execution.stored === miss.attempted.status) {
					const arrived = execution.pending as RunPatch | undefined;
					execution.pending = arrived === undefined ? miss.patch : { ...miss.patch, ...arrived };
				}

				this.#host.onStored(execution);
			}

			while (execution.pending !== undefined && !execution.detached && !this.#closed) {
				const patch = execution.pending;
				execution.pending = undefined;
				let conflict: Conflict | undefined;
				try {
					conflict = await this.#apply(execution, patch);
				} catch (error) {
					if (this.#closed) return;
					const operation = execution.stored === undefined ? 'addRun' : 'updateRun';
					if (isRefusal(error)) {
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
					this.#detach(execution, conflict);
				}
			}
		} finally {
			execution.writing = false;
			this.#idle(execution);
		}
	}

	#detach(execution: Execution, conflict: Conflict): void {
		execution.detached = true;
		execution.pending = undefined;
		this.#host.onConflict(execution, conflict.stored, conflict.ours);
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
	async #apply(execution: Execution, patch: RunPatch): Promise<Conflict | undefined> {
		const writes: RunWrite[] = [];
		putWrites(execution, patch, writes, 0);
		for (const write of writes) {
			if (write.type === 'add') return this.#add(execution);
			const updated = await this.#update(execution, write.patch, write.ifStatus);
			if (updated === undefined) {
				const conflict = await this.#conflict(execution, write.patch);
				if (conflict !== undefined) return conflict;
			}
		}

		return undefined;
	}

	// The first write of a run: the whole current view, in whatever status it has reached.
	async #add(execution: Execution): Promise<Conflict | undefined> {
		const sent = sentView(execution);
		try {
			await this.#registry.addRun(sent);
		} catch (error) {
			if (!isNamed(error, 'RunExistsError')) throw error;
			const current = await this.#registry.getRun(execution.runId);
			// Our own add may have landed after a failed attempt. A generated id is unique, so a record under
			// it is ours even on a first attempt (a client re-sent the add); a chosen id may be a copy's
			// (a double submit): a registry that keeps add tokens tells re-sent adds apart by itself.
			if (current !== undefined && isSameRun(current, sent) && (execution.attempts > 0 || !execution.chosenId)) {
				execution.stored = current.status;
				return current.status === execution.view.status ? undefined : this.#apply(execution, patchOf(execution.view));
			}

			return { stored: current, ours: false };
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
	// `attempted` is the patch whose compare-and-set missed, if any.
	async #conflict(execution: Execution, attempted: RunPatch | undefined): Promise<Conflict | undefined> {
		const current = await this.#registry.getRun(execution.runId);
		if (current === undefined) {
			// The record is gone — never added by the caller, deleted, expired, or lost with the
			// registry's data: this manager still runs it, so it writes it again, whole.
			execution.adopted = false;
			execution.stored = undefined;
			// The whole view goes out, and it holds every change not yet written.
			execution.pending = undefined;
			return this.#add(execution);
		}

		const ours = isSameRun(current, execution.view);
		// The write may have landed although it was reported failed or missed: after an error, or when
		// the client sent it twice (ioredis re-sends unanswered commands after a reconnect).
		if (ours && attempted !== undefined && hasLanded(current, attempted)) {
			execution.stored = current.status;
			return undefined;
		}

		return { stored: current, ours };
	}
}

/**
 * Puts the writes that store `patch` at `writes[at]` on, and returns how many: the whole view when
 * the run was never added, else a compare-and-set against what was last stored (an adopted record
 * was added QUEUED by the caller) — preceded by the start it implies when the run started and
 * ended before its start was written (queued → completed is not a step).
 */
function putWrites(execution: Execution, patch: RunPatch, writes: RunWrite[], at: number): 1 | 2 {
	const start = impliedStart(execution, patch);
	if (start === undefined) {
		writes[at] = writeOf(execution, patch, false);
		return 1;
	}

	writes[at] = start;
	writes[at + 1] = writeOf(execution, patch, true);
	return 2;
}

// The start that must be written before `patch`, if any (see putWrites).
function impliedStart(execution: Execution, patch: RunPatch): RunWrite | undefined {
	if (execution.stored === undefined && !execution.adopted) return undefined;
	if ((execution.stored ?? 'queued') !== 'queued' || patch.status !== 'completed') return undefined;
	return { type: 'update', runId: execution.runId, patch: startOf(patch), ifStatus: 'queued' };
}

// The write of `patch` itself, after its implied start when `afterStart` (see putWrites).
function writeOf(execution: Execution, patch: RunPatch, afterStart: boolean): RunWrite {
	if (execution.stored === undefined && !execution.adopted) return { type: 'add', run: sentView(execution) };
	return { type: 'update', runId: execution.runId, patch, ifStatus: afterStart ? 'running' : (execution.stored ?? 'queued') };
}

// The status the registry holds once `write` applied.
function storedAfter(write: RunWrite, stored: RunStatus | undefined): RunStatus | undefined {
	return write.type === 'add' ? write.run.status : (write.patch.status ?? stored);
}

// The view to add: with an add token when the caller chose the id (see registry-internals.ts).
function sentView(execution: Execution): Run {
	if (!execution.chosenId) return execution.view;
	execution.addToken ??= generateRunId();
	return withAddToken(execution.view, execution.addToken);
}

// What the registry holds instead of what a write expected.
interface Conflict {
	readonly stored: Run | undefined;
	// `stored` is this run's own record rather than another run's under the same id.
	readonly ours: boolean;
}

/**
 * Whether `stored` is the record of the run this manager sent as `sent`, rather than another run
 * under the same id: same creation time, module, item, parameters and (once set) owner. Two
 * copies equal in all of these, made in the same millisecond by managers without `instanceId`,
 * cannot be told apart.
 */
export function isSameRun(stored: Run, sent: Run): boolean {
	return (
		stored.createdAt === sent.createdAt &&
		stored.moduleId === sent.moduleId &&
		stored.itemId === sent.itemId &&
		(stored.ownerId === undefined || stored.ownerId === sent.ownerId) &&
		sameJson(stored.parameters, sent.parameters)
	);
}

// Whether `stored` holds what `patch` would have written: its status and its times.
function hasLanded(stored: Run, patch: RunPatch): boolean {
	return (
		patch.status !== undefined &&
		stored.status === patch.status &&
		(patch.startedAt === undefined || stored.startedAt === patch.startedAt) &&
		(patch.completedAt === undefined || stored.completedAt === patch.completedAt)
	);
}

function sameJson(a: unknown, b: unknown): boolean {
	try {
		return JSON.stringify(a) === JSON.stringify(b);
	} catch {
		// Not JSON (a BigInt, a cycle): what can be compared is equal.
		return true;
	}
}

// Errors are matched by name: a registry may come from another copy of this package.
function isNamed(error: unknown, name: string): boolean {
	return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === name;
}

function isRefusal(error: unknown): boolean {
	return typeof error === 'object' && error !== null && REFUSALS.has((error as { name?: unknown }).name as string);
}

// The start a terminal patch implies, for a run whose start was never written: the patch without
// its status, result, error and completion time. (Field by field: a rest-spread copy is slow in V8,
// and with Redis this is the write of every run that ends before its add has landed.)
function startOf(patch: RunPatch): RunPatch {
	const start: RunPatch = { status: 'running' };
	if (patch.priority !== undefined) start.priority = patch.priority;
	if (patch.progress !== undefined) start.progress = patch.progress;
	if (patch.startedAt !== undefined) start.startedAt = patch.startedAt;
	if (patch.ownerId !== undefined) start.ownerId = patch.ownerId;
	if (patch.metadata !== undefined) start.metadata = patch.metadata;
	return start;
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

/**
 * The in-process {@link RunRegistry}: runs live in this process's memory and are gone when it
 * exits. Listing is served from indexes (by status, module, item and owner), and the number of
 * finished runs kept is bounded by `maxRuns`.
 */
import { IllegalTransitionError, RunExistsError, ValidationError } from './errors.js';
import { storeValue } from './memory/copy-value.js';
import { OrderedIndex } from './memory/ordered-index.js';
import { RunEntry } from './memory/run-entry.js';
import { RunTable } from './memory/run-table.js';
import { assertId, assertPatch, assertRun, assertRunWrite, parseRunQuery, parseStatusFilter } from './run-validation.js';
import type { RunPage, RunQuery, RunRegistry, RunWrite, RunWriteResult, UpdateRunOptions } from './registry.js';
import { applyWriteNow, findSlot, newRunId, releaseSlot, type WriteSlot } from './registry-internals.js';
import { DEFAULT_MAX_RESULT_BYTES, assertResultSize, parseMaxResultBytes } from './result-size.js';
import { RunStatus, isLegalTransition, isTerminalStatus, type Run, type RunPatch } from './run.js';

/** Options for {@link MemoryRunRegistry}. */
export interface MemoryRunRegistryOptions {
	/**
	 * How many runs to keep. When adding a run would go past it, the runs that finished
	 * (completed, failed or cancelled) longest ago are evicted to make room. Active runs are never
	 * evicted: while every stored run is active the registry grows past `maxRuns`, and it shrinks
	 * back to it as runs finish and new ones are added. A positive integer, or `Infinity` for no bound.
	 * @default 10_000
	 */
	readonly maxRuns?: number;
	/**
	 * The largest `result` stored, in UTF-8 bytes of its JSON text (as the Redis registry measures
	 * it), so that tests on this registry catch what production would refuse. A larger result is
	 * refused with a `ResultTooLargeError` (the manager records the run FAILED with it). A result
	 * JSON cannot represent is not measured. A positive integer, or `Infinity` for no cap.
	 * @default 1_048_576
	 */
	readonly maxResultBytes?: number;
}

// A position in creation order: what a cursor encodes.
interface Position {
	readonly createdAt: number;
	readonly seq: number;
}

// Results shared by every write of a batch that went as expected.
const APPLIED: RunWriteResult = Object.freeze({ outcome: 'applied' });
const MISSED: RunWriteResult = Object.freeze({ outcome: 'missed' });

const DEFAULT_MAX_RUNS = 10_000;
const STATUSES = Object.values(RunStatus);

const byCreation = (a: Position, b: Position): number => a.createdAt - b.createdAt || a.seq - b.seq;
const isStored = (entry: RunEntry): boolean => !entry.removed;
// Module and item never change, so staying stored is all it takes to stay in their buckets.
const storedLiveness = (): ((entry: RunEntry) => boolean) => isStored;
const statusPredicates = Object.fromEntries(
	STATUSES.map((status) => [status, (entry: RunEntry) => !entry.removed && entry.status === status]),
) as Record<RunStatus, (entry: RunEntry) => boolean>;
// A bucket per status, each live for the runs in its status.
const statusBuckets = (): Record<RunStatus, OrderedIndex<RunEntry, Position>> =>
	Object.fromEntries(
		STATUSES.map((status) => [status, new OrderedIndex<RunEntry, Position>(RunEntry.compareCreation, statusPredicates[status], byCreation)]),
	) as Record<RunStatus, OrderedIndex<RunEntry, Position>>;
const ownerLiveness =
	(ownerId: string) =>
	(entry: RunEntry): boolean =>
		!entry.removed && entry.ownerId === ownerId;

/**
 * A {@link RunRegistry} that keeps runs in memory: for a single process, tests and demos.
 *
 * Each method does all its work before its promise settles and never waits in between, so calls
 * cannot interleave: every method is atomic, and of concurrent compare-and-set updates exactly one
 * wins. Runs going in and coming out are copies: user values (`parameters`, `result`, `metadata`,
 * `progress`, `error`) are deep-copied as `structuredClone` would, except values it refuses
 * (functions, for instance), which are kept by reference. There is nothing to release, so it has
 * no `close()`.
 *
 * @example
 * ```ts
 * const registry = new MemoryRunRegistry({ maxRuns: 1_000 });
 * ```
 */
export class MemoryRunRegistry implements RunRegistry {
	// Every stored run by id; an entry here is never `removed`.
	readonly #entries = new RunTable<RunEntry>();
	// Runs by current status; a run leaves its bucket when its status moves on. One bucket per
	// status, kept while empty: dropping the running one whenever it empties would make and drop it
	// (an allocation and two Map writes) at every start and end of a service running one run at a time.
	readonly #byStatus = statusBuckets();
	// Runs by moduleId, in creation order. No empty buckets.
	readonly #byModule = new Map<string, OrderedIndex<RunEntry, Position>>();
	// Runs by itemId, in creation order. No empty buckets.
	readonly #byItem = new Map<string, OrderedIndex<RunEntry, Position>>();
	// Runs by current ownerId, in creation order. No empty buckets.
	readonly #byOwner = new Map<string, OrderedIndex<RunEntry, Position>>();
	// Terminal runs by end time, oldest first: eviction and cleanup take from its front.
	readonly #ended = new OrderedIndex<RunEntry>(RunEntry.compareEnd, isStored);
	// Owner leases: owner id → when its lease lapses (this process's clock is the registry's clock).
	readonly #leases = new Map<string, number>();
	// Slots of runs removed while linked (see `WriteSlot`), until their managers release them.
	readonly #orphanSlots = new Map<string, WriteSlot[]>();
	// The next entry's `seq`; only grows.
	#nextSeq = 0;
	// Validated in the constructor: a positive integer or Infinity.
	readonly #maxRuns: number;
	// Validated in the constructor: a positive integer or Infinity.
	readonly #maxResultBytes: number;

	/** @throws {ValidationError} When an option is out of range. */
	constructor(options: MemoryRunRegistryOptions = {}) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { maxRuns = DEFAULT_MAX_RUNS, maxResultBytes = DEFAULT_MAX_RESULT_BYTES } = options;
		this.#maxResultBytes = parseMaxResultBytes(maxResultBytes);
		if (!(maxRuns === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxRuns) && maxRuns >= 1))) {
			throw new ValidationError('maxRuns', 'a positive integer or Infinity', maxRuns);
		}
		this.#maxRuns = maxRuns;
	}

	/** How many runs are stored, active and finished. */
	get size(): number {
		return this.#entries.size;
	}

	/** The bound on stored runs set by {@link MemoryRunRegistryOptions.maxRuns}. */
	get maxRuns(): number {
		return this.#maxRuns;
	}

	/**
	 * Records a copy of `run`, first evicting the oldest terminal runs if the registry is full.
	 * @throws {RunExistsError} When a run with this id is stored.
	 * @throws {ValidationError} When `run` is not a run.
	 */
	async addRun(run: Run): Promise<void> {
		assertRun(run);
		this.#add(run, true);
	}

	/** A copy of the run, or `undefined` when the id is unknown. */
	async getRun(runId: string): Promise<Run | undefined> {
		assertId('runId', runId);
		const entry = this.#entries.get(runId);
		return entry === undefined ? undefined : entry.toRun();
	}

	/**
	 * Applies `patch` and stamps `updatedAt` (never moving it back). Resolves `undefined` when the
	 * run is missing or its status is not in `options.ifStatus`.
	 * @throws {IllegalTransitionError} When the patch would make an illegal status change or touch a terminal run; nothing changes.
	 * @throws {ValidationError} When the patch holds a value of the wrong type; nothing changes.
	 */
	async updateRun(runId: string, patch: RunPatch, options: UpdateRunOptions = {}): Promise<Run | undefined> {
		assertId('runId', runId);
		const ifStatus = parseStatusFilter('options.ifStatus', options.ifStatus);
		assertPatch(patch);
		const entry = this.#update(this.#entries.get(runId), runId, patch, ifStatus, Date.now());
		return entry === undefined ? undefined : entry.toRun();
	}

	/**
	 * Applies `writes` in order, each exactly as `addRun` / `updateRun` would, all before the promise
	 * settles (so the batch is atomic too). Resolves one result per write.
	 * @throws {ValidationError} When `writes` is not an array.
	 */
	async applyWrites(writes: readonly RunWrite[]): Promise<RunWriteResult[]> {
		if (!Array.isArray(writes)) throw new ValidationError('writes', 'an array of writes', writes);
		const results = new Array<RunWriteResult>(writes.length);
		for (let index = 0; index < writes.length; index++) results[index] = this.#applyWrite(writes[index] as RunWrite);
		return results;
	}

	#applyWrite(write: RunWrite): RunWriteResult {
		try {
			assertRunWrite(write);
			if (write.type === 'add') {
				this.#add(write.run, true);
				return APPLIED;
			}
			return this.#update(this.#entries.get(write.runId), write.runId, write.patch, write.ifStatus, Date.now()) === undefined ? MISSED : APPLIED;
		} catch (error) {
			return { outcome: 'failed', error };
		}
	}

	/**
	 * One write from a manager, without the promise, so that it writes each change as it happens.
	 * The manager built it from input it validated, so it is not checked again; `slot` keeps the
	 * run's entry for the next write, which then skips the lookup by id.
	 */
	[applyWriteNow](write: RunWrite, slot: WriteSlot): RunWriteResult {
		try {
			if (write.type === 'add') {
				const entry = this.#add(write.run, slot.handle !== undefined || !slot.freshId);
				slot.handle = entry;
				if (slot.owner !== undefined && !slot.linked) {
					entry.slot = slot;
					slot.linked = true;
				}
				return APPLIED;
			}
			let entry = slot.handle as RunEntry | undefined;
			// A removed entry is dead for good: whatever holds the id now (if anything) is found by id.
			if (entry === undefined || entry.removed) {
				entry = this.#entries.get(write.runId);
				// A record linked to another manager's run is that run's, whatever its id: this write missed.
				if (entry?.slot !== undefined && entry.slot !== slot) return MISSED;
				slot.handle = entry;
			}
			// The manager shares this process's clock and stamped the change just now: its time saves asking again.
			const { patch } = write;
			const now = patch.completedAt ?? patch.startedAt ?? Date.now();
			return this.#update(entry, write.runId, patch, write.ifStatus, now) === undefined ? MISSED : APPLIED;
		} catch (error) {
			return { outcome: 'failed', error };
		}
	}

	/** An id for a run a manager is about to add: one this registry stores and finds by an array access (see `RunTable`). */
	[newRunId](): string {
		return this.#entries.newId();
	}

	/** The slot of `owner` linked to run `runId` (see `WriteSlot`), if any. */
	[findSlot](runId: string, owner: object): WriteSlot | undefined {
		const slot = this.#entries.get(runId)?.slot;
		if (slot?.owner === owner) return slot;
		// The run's record was removed while its manager still held the run.
		return this.#orphanSlots.get(runId)?.find((orphan) => orphan.owner === owner);
	}

	/** Unlinks `slot`: its run is done in its manager. */
	[releaseSlot](slot: WriteSlot): void {
		slot.linked = false;
		const entry = slot.handle as RunEntry | undefined;
		if (entry?.slot === slot) {
			entry.slot = undefined;
			return;
		}
		const orphans = this.#orphanSlots.get(slot.runId);
		if (orphans === undefined) return;
		const left = orphans.filter((orphan) => orphan !== slot);
		if (left.length === 0) this.#orphanSlots.delete(slot.runId);
		else this.#orphanSlots.set(slot.runId, left);
	}

	// Adds `run`, checked by the caller (or built by a manager from input it checked). `mayExist` is
	// false only for the first add of an id the manager generated: no stored run can hold it.
	#add(run: Run, mayExist: boolean): RunEntry {
		this.#assertResultSize(run.result);
		if (mayExist && this.#entries.has(run.runId)) throw new RunExistsError(run.runId);
		this.#makeRoom();
		const entry = new RunEntry(run, this.#nextSeq++);
		this.#entries.set(entry);
		this.#byStatus[entry.status].insert(entry);
		join(this.#byModule, entry.moduleId, entry, storedLiveness);
		if (entry.itemId !== undefined) join(this.#byItem, entry.itemId, entry, storedLiveness);
		if (entry.ownerId !== undefined) join(this.#byOwner, entry.ownerId, entry, ownerLiveness);
		if (isTerminalStatus(entry.status)) this.#ended.insert(entry);
		return entry;
	}

	// Updates `entry` (the stored run of `runId`, if any) with a checked `patch` at time `now`. Returns
	// the entry, or undefined when the run is missing or not in `ifStatus`.
	#update(entry: RunEntry | undefined, runId: string, patch: RunPatch, ifStatus: RunStatus | readonly RunStatus[] | undefined, now: number): RunEntry | undefined {
		this.#assertResultSize(patch.result);
		if (entry === undefined) return undefined;
		if (ifStatus !== undefined && (typeof ifStatus === 'string' ? entry.status !== ifStatus : !ifStatus.includes(entry.status))) return undefined;
		const from = entry.status;
		const to = patch.status ?? from;
		if (isTerminalStatus(from) || !isLegalTransition(from, to)) throw new IllegalTransitionError(runId, from, to);

		const previousOwner = entry.ownerId;
		entry.status = to;
		if (patch.priority !== undefined) entry.priority = patch.priority;
		if (patch.progress !== undefined) entry.progress = storeValue(patch.progress);
		if (patch.result !== undefined) entry.result = storeValue(patch.result);
		if (patch.error !== undefined) entry.error = storeValue(patch.error);
		if (patch.ownerId !== undefined) entry.ownerId = patch.ownerId;
		if (patch.metadata !== undefined) entry.metadata = storeValue(patch.metadata);
		entry.stamp(patch.startedAt, patch.completedAt, now);

		if (to !== from) {
			this.#byStatus[from].markDead();
			this.#byStatus[to].insert(entry);
			if (isTerminalStatus(to)) this.#ended.insert(entry);
		}
		if (entry.ownerId !== previousOwner) {
			if (previousOwner !== undefined) leave(this.#byOwner, previousOwner);
			join(this.#byOwner, entry.ownerId as string, entry, ownerLiveness);
		}
		return entry;
	}

	/**
	 * Runs matching `query`, newest first by `createdAt` (ties: the later added first). Paging is
	 * stable: runs added or removed between pages never make a page repeat or skip another run.
	 * @throws {ValidationError} When a filter, `limit` (an integer from 1 to 10,000) or `cursor` is invalid.
	 */
	async listRuns(query: RunQuery = {}): Promise<RunPage> {
		const parsed = parseRunQuery(query);
		const statuses = toSet(parsed.statuses);
		const { moduleId, itemId, ownerId, limit, cursor } = parsed;
		const after = cursor === undefined ? undefined : decodeCursor(cursor);

		// Walk the smallest bucket that covers the query; every other filter is checked per run.
		// With no filter, that is every status bucket, merged: no index of all runs is kept (8 bytes less per run).
		let sources: Array<OrderedIndex<RunEntry, Position>> = Object.values(this.#byStatus);
		let sourceSize = this.#entries.size;
		const consider = (candidates: Array<OrderedIndex<RunEntry, Position> | undefined>): boolean => {
			const buckets = candidates.filter((bucket) => bucket !== undefined);
			const size = buckets.reduce((sum, bucket) => sum + bucket.size, 0);
			if (size < sourceSize) {
				sources = buckets;
				sourceSize = size;
			}
			return size > 0;
		};
		const possible =
			(statuses === undefined || consider([...statuses].map((status) => this.#byStatus[status]))) &&
			(moduleId === undefined || consider([this.#byModule.get(moduleId)])) &&
			(itemId === undefined || consider([this.#byItem.get(itemId)])) &&
			(ownerId === undefined || consider([this.#byOwner.get(ownerId)]));
		if (!possible) return { runs: [] };

		// One position per source, walking backwards; several sources (a status list) are merged.
		const positions = sources.map((source) => (after === undefined ? source.end : source.lowerBound(after)) - 1);
		const runs: Run[] = [];
		let last: RunEntry | undefined;
		for (;;) {
			let pick = -1;
			for (let index = 0; index < sources.length; index++) {
				const source = sources[index] as OrderedIndex<RunEntry, Position>;
				const position = positions[index] as number;
				if (position < source.start) continue;
				if (pick === -1 || byCreation(source.at(position), current(sources, positions, pick)) > 0) pick = index;
			}
			if (pick === -1) break;
			const source = sources[pick] as OrderedIndex<RunEntry, Position>;
			const entry = current(sources, positions, pick);
			positions[pick] = (positions[pick] as number) - 1;
			if (entry.removed || !source.holds(entry)) continue;
			if (statuses !== undefined && !statuses.has(entry.status)) continue;
			if (moduleId !== undefined && entry.moduleId !== moduleId) continue;
			if (itemId !== undefined && entry.itemId !== itemId) continue;
			if (ownerId !== undefined && entry.ownerId !== ownerId) continue;
			if (runs.length === limit) return { runs, nextCursor: encodeCursor(last as RunEntry) };
			runs.push(entry.toRun());
			last = entry;
		}
		return { runs };
	}

	/** The runs of `runIds`, in order, `undefined` for unknown ids. */
	async getRuns(runIds: readonly string[]): Promise<Array<Run | undefined>> {
		if (!Array.isArray(runIds)) throw new ValidationError('runIds', 'an array of run ids', runIds);
		return runIds.map((runId: string) => {
			assertId('runId', runId);
			const entry = this.#entries.get(runId);
			return entry === undefined ? undefined : entry.toRun();
		});
	}

	/** Renews the lease of `ownerId` until `ttlMs` from now. */
	async heartbeat(ownerId: string, ttlMs: number): Promise<void> {
		assertId('ownerId', ownerId);
		if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
			throw new ValidationError('ttlMs', 'a positive finite number', ttlMs);
		}
		this.#leases.set(ownerId, Date.now() + ttlMs);
	}

	/** Ends the lease of `ownerId` now. */
	async releaseOwner(ownerId: string): Promise<void> {
		assertId('ownerId', ownerId);
		this.#leases.delete(ownerId);
	}

	/** Fails ('OwnerLostError') every queued or running run whose owner holds no live lease. Resolves their ids. */
	async reapOrphans(): Promise<string[]> {
		const now = Date.now();
		const orphans: RunEntry[] = [];
		for (const status of ['queued', 'running'] as const) {
			const bucket = this.#byStatus[status];
			for (let position = bucket.start; position < bucket.end; position++) {
				const entry = bucket.at(position);
				const ownerId = bucket.holds(entry) ? entry.ownerId : undefined;
				if (ownerId !== undefined && !((this.#leases.get(ownerId) ?? 0) > now)) orphans.push(entry);
			}
		}

		// Each update runs to completion when called (nothing in it waits), so the whole reap is one atomic step.
		const reaped = orphans.map((entry) => {
			const { runId, ownerId, status } = entry;
			return this.updateRun(
				runId,
				{
					status: 'failed',
					completedAt: now,
					error: { name: 'OwnerLostError', message: `Owner "${ownerId}" of run "${runId}" stopped renewing its lease` },
				},
				{ ifStatus: status },
			);
		});
		const runs = await Promise.all(reaped);
		return runs.flatMap((run) => (run === undefined ? [] : [run.runId]));
	}

	/** Removes a run, active or not. Resolves `true` when there was one. */
	async deleteRun(runId: string): Promise<boolean> {
		assertId('runId', runId);
		const entry = this.#entries.get(runId);
		if (entry === undefined) return false;
		this.#remove(entry);
		return true;
	}

	/**
	 * Removes terminal runs whose end (`completedAt`, else `updatedAt`) is more than `maxAgeMs`
	 * before now. Active runs are never removed.
	 * @returns How many runs were removed.
	 * @throws {ValidationError} When `maxAgeMs` is not a non-negative finite number.
	 */
	async cleanupOldRuns(maxAgeMs: number): Promise<number> {
		if (typeof maxAgeMs !== 'number' || !Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
			throw new ValidationError('maxAgeMs', 'a non-negative finite number', maxAgeMs);
		}
		const cutoff = Date.now() - maxAgeMs;
		let removed = 0;
		for (let oldest = this.#ended.first(); oldest !== undefined && oldest.endedAt < cutoff; oldest = this.#ended.first()) {
			this.#remove(oldest);
			removed++;
		}
		return removed;
	}

	// Evicts the longest-finished runs until one more fits, or no terminal run is left.
	#makeRoom(): void {
		while (this.#entries.size >= this.#maxRuns) {
			const oldest = this.#ended.first();
			if (oldest === undefined) return;
			this.#remove(oldest);
		}
	}

	// Measured as the Redis registry measures it: the UTF-8 bytes of the JSON text.
	#assertResultSize(result: unknown): void {
		if (this.#maxResultBytes === Number.POSITIVE_INFINITY || result === undefined || result === null) return;
		if (typeof result !== 'object' && typeof result !== 'string') return;
		let json: string | undefined;
		try {
			json = JSON.stringify(result);
		} catch {
			// Not JSON (a BigInt, a cycle): stored as structuredClone would, unmeasured.
			return;
		}
		if (json !== undefined) assertResultSize(json, this.#maxResultBytes);
	}

	#remove(entry: RunEntry): void {
		entry.remove();
		if (entry.slot !== undefined) {
			// Its manager still holds the run, and still finds it by id here until it releases it.
			this.#orphanSlots.set(entry.runId, [...(this.#orphanSlots.get(entry.runId) ?? []), entry.slot]);
			entry.slot = undefined;
		}
		this.#entries.delete(entry);
		this.#byStatus[entry.status].markDead();
		leave(this.#byModule, entry.moduleId);
		if (entry.itemId !== undefined) leave(this.#byItem, entry.itemId);
		if (entry.ownerId !== undefined) leave(this.#byOwner, entry.ownerId);
		if (isTerminalStatus(entry.status)) this.#ended.markDead();
	}
}

function current(sources: ReadonlyArray<OrderedIndex<RunEntry, Position>>, positions: readonly number[], index: number): RunEntry {
	return (sources[index] as OrderedIndex<RunEntry, Position>).at(positions[index] as number);
}

// Adds `entry` to the bucket for `key`, creating the bucket (live while `liveness(key)` says so) if needed.
function join<K>(
	buckets: Map<K, OrderedIndex<RunEntry, Position>>,
	key: K,
	entry: RunEntry,
	liveness: (key: K) => (entry: RunEntry) => boolean,
): void {
	let bucket = buckets.get(key);
	if (bucket === undefined) {
		bucket = new OrderedIndex<RunEntry, Position>(RunEntry.compareCreation, liveness(key), byCreation);
		buckets.set(key, bucket);
	}
	bucket.insert(entry);
}

// Records that one run left the bucket for `key` (its state already says so); drops the bucket once empty.
function leave<K>(buckets: Map<K, OrderedIndex<RunEntry, Position>>, key: K): void {
	const bucket = buckets.get(key);
	if (bucket === undefined) return;
	bucket.markDead();
	if (bucket.size === 0) buckets.delete(key);
}

function toSet(statuses: RunStatus[] | undefined): Set<RunStatus> | undefined {
	return statuses === undefined ? undefined : new Set(statuses);
}

// A cursor is the position of the last run of a page: base64url of `${createdAt}:${seq}`.
function encodeCursor(position: Position): string {
	return Buffer.from(`${position.createdAt}:${position.seq}`).toString('base64url');
}

function decodeCursor(cursor: unknown): Position {
	if (typeof cursor === 'string' && cursor !== '') {
		const parts = Buffer.from(cursor, 'base64url').toString().split(':');
		const position = { createdAt: Number(parts[0]), seq: Number(parts[1]) };
		// Re-encoding must give the cursor back, which rules out every non-canonical spelling.
		if (
			parts.length === 2 &&
			Number.isFinite(position.createdAt) &&
			Number.isSafeInteger(position.seq) &&
			position.seq >= 0 &&
			encodeCursor(position) === cursor
		) {
			return position;
		}
	}
	throw new ValidationError('query.cursor', 'a nextCursor returned by listRuns', cursor);
}

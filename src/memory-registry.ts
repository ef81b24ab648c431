/**
 * The in-process {@link RunRegistry}: runs live in this process's memory and are gone when it
 * exits. Listing is served from indexes (by status, module, item and owner), and the number of
 * finished runs kept is bounded by `maxRuns`.
 */
import { IllegalTransitionError, RunExistsError, ValidationError } from './errors.js';
import { OrderedIndex } from './memory/ordered-index.js';
import { assertId, assertOptionalString, assertPatch, assertRun, parseStatusFilter } from './run-validation.js';
import type { RunPage, RunQuery, RunRegistry, UpdateRunOptions } from './registry.js';
import {
	RunStatus,
	isLegalTransition,
	isTerminalStatus,
	type Run,
	type RunPatch,
} from './run.js';

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
}

// The stored record: a Run the registry may update in place.
type StoredRun = { -readonly [K in keyof Run]: Run[K] };

// One per stored run; the index buckets and the terminal queue hold these.
interface Entry {
	// The record; `undefined` once the run is removed, which makes the entry dead everywhere.
	run: StoredRun | undefined;
	// Copied from the record so that the order is known even after removal.
	readonly createdAt: number;
	// Insertion order: breaks ties between equal `createdAt`s, so positions are unique.
	readonly seq: number;
	// `completedAt ?? updatedAt` once terminal (fixed from then on, as terminal runs never change).
	endedAt: number;
}

// A position in creation order: what a cursor encodes.
interface Position {
	readonly createdAt: number;
	readonly seq: number;
}

const DEFAULT_MAX_RUNS = 10_000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;
const STATUSES = Object.values(RunStatus);

const byCreation = (a: Position, b: Position): number => a.createdAt - b.createdAt || a.seq - b.seq;
const byEnd = (a: Entry, b: Entry): number => a.endedAt - b.endedAt || a.seq - b.seq;
const isStored = (entry: Entry): boolean => entry.run !== undefined;
// Module and item never change, so staying stored is all it takes to stay in their buckets.
const storedLiveness = (): ((entry: Entry) => boolean) => isStored;
const statusPredicates = Object.fromEntries(
	STATUSES.map((status) => [status, (entry: Entry) => entry.run?.status === status]),
) as Record<RunStatus, (entry: Entry) => boolean>;
const statusLiveness = (status: RunStatus): ((entry: Entry) => boolean) => statusPredicates[status];
const ownerLiveness =
	(ownerId: string) =>
	(entry: Entry): boolean =>
		entry.run?.ownerId === ownerId;

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
	// Every stored run by id; an entry here always has its `run` set.
	readonly #entries = new Map<string, Entry>();
	// Every stored run in creation order.
	readonly #all = new OrderedIndex<Entry, Position>(byCreation, isStored);
	// Runs by current status; a run leaves its bucket when its status moves on. No empty buckets.
	readonly #byStatus = new Map<RunStatus, OrderedIndex<Entry, Position>>();
	// Runs by moduleId, in creation order. No empty buckets.
	readonly #byModule = new Map<string, OrderedIndex<Entry, Position>>();
	// Runs by itemId, in creation order. No empty buckets.
	readonly #byItem = new Map<string, OrderedIndex<Entry, Position>>();
	// Runs by current ownerId, in creation order. No empty buckets.
	readonly #byOwner = new Map<string, OrderedIndex<Entry, Position>>();
	// Terminal runs by end time, oldest first: eviction and cleanup take from its front.
	readonly #ended = new OrderedIndex<Entry>(byEnd, isStored);
	// Owner leases: owner id → when its lease lapses (this process's clock is the registry's clock).
	readonly #leases = new Map<string, number>();
	// The next entry's `seq`; only grows.
	#nextSeq = 0;
	// Validated in the constructor: a positive integer or Infinity.
	readonly #maxRuns: number;

	/** @throws {ValidationError} When an option is out of range. */
	constructor(options: MemoryRunRegistryOptions = {}) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { maxRuns = DEFAULT_MAX_RUNS } = options;
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
		const record = toStoredRun(run);
		if (this.#entries.has(record.runId)) throw new RunExistsError(record.runId);
		this.#makeRoom();
		const entry: Entry = { run: record, createdAt: record.createdAt, seq: this.#nextSeq++, endedAt: 0 };
		this.#entries.set(record.runId, entry);
		this.#all.insert(entry);
		join(this.#byStatus, record.status, entry, statusLiveness);
		join(this.#byModule, record.moduleId, entry, storedLiveness);
		if (record.itemId !== undefined) join(this.#byItem, record.itemId, entry, storedLiveness);
		if (record.ownerId !== undefined) join(this.#byOwner, record.ownerId, entry, ownerLiveness);
		if (isTerminalStatus(record.status)) this.#end(entry, record);
	}

	/** A copy of the run, or `undefined` when the id is unknown. */
	async getRun(runId: string): Promise<Run | undefined> {
		assertId('runId', runId);
		const record = this.#entries.get(runId)?.run;
		return record === undefined ? undefined : snapshot(record);
	}

	/**
	 * Applies `patch` and stamps `updatedAt` (never moving it back). Resolves `undefined` when the
	 * run is missing or its status is not in `options.ifStatus`.
	 * @throws {IllegalTransitionError} When the patch would make an illegal status change or touch a terminal run; nothing changes.
	 * @throws {ValidationError} When the patch holds a value of the wrong type; nothing changes.
	 */
	async updateRun(runId: string, patch: RunPatch, options: UpdateRunOptions = {}): Promise<Run | undefined> {
		assertId('runId', runId);
		assertPatch(patch);
		const ifStatus = toSet(parseStatusFilter('options.ifStatus', options.ifStatus));
		const entry = this.#entries.get(runId);
		const record = entry?.run;
		if (entry === undefined || record === undefined) return undefined;
		if (ifStatus !== undefined && !ifStatus.has(record.status)) return undefined;
		const from = record.status;
		const to = patch.status ?? from;
		if (isTerminalStatus(from) || !isLegalTransition(from, to)) throw new IllegalTransitionError(runId, from, to);

		const previousOwner = record.ownerId;
		record.status = to;
		if (patch.priority !== undefined) record.priority = patch.priority;
		if (patch.progress !== undefined) record.progress = cloneValue(patch.progress);
		if (patch.result !== undefined) record.result = cloneValue(patch.result);
		if (patch.error !== undefined) record.error = cloneValue(patch.error);
		if (patch.startedAt !== undefined) record.startedAt = patch.startedAt;
		if (patch.completedAt !== undefined) record.completedAt = patch.completedAt;
		if (patch.ownerId !== undefined) record.ownerId = patch.ownerId;
		if (patch.metadata !== undefined) record.metadata = cloneValue(patch.metadata);
		record.updatedAt = Math.max(Date.now(), record.updatedAt);

		if (to !== from) {
			leave(this.#byStatus, from);
			join(this.#byStatus, to, entry, statusLiveness);
			if (isTerminalStatus(to)) this.#end(entry, record);
		}
		if (record.ownerId !== previousOwner) {
			if (previousOwner !== undefined) leave(this.#byOwner, previousOwner);
			join(this.#byOwner, record.ownerId as string, entry, ownerLiveness);
		}
		return snapshot(record);
	}

	/**
	 * Runs matching `query`, newest first by `createdAt` (ties: the later added first). Paging is
	 * stable: runs added or removed between pages never make a page repeat or skip another run.
	 * @throws {ValidationError} When a filter, `limit` (an integer from 1 to 10,000) or `cursor` is invalid.
	 */
	async listRuns(query: RunQuery = {}): Promise<RunPage> {
		if (typeof query !== 'object' || query === null) throw new ValidationError('query', 'an object', query);
		const statuses = toSet(parseStatusFilter('query.status', query.status));
		const { moduleId, itemId, ownerId, limit = DEFAULT_LIMIT, cursor } = query;
		assertOptionalString('query.moduleId', moduleId);
		assertOptionalString('query.itemId', itemId);
		assertOptionalString('query.ownerId', ownerId);
		if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
			throw new ValidationError('query.limit', `an integer from 1 to ${MAX_LIMIT}`, limit);
		}
		const after = cursor === undefined ? undefined : decodeCursor(cursor);

		// Walk the smallest bucket that covers the query; every other filter is checked per run.
		let sources: Array<OrderedIndex<Entry, Position>> = [this.#all];
		let sourceSize = this.#all.size;
		const consider = (candidates: Array<OrderedIndex<Entry, Position> | undefined>): boolean => {
			const buckets = candidates.filter((bucket) => bucket !== undefined);
			const size = buckets.reduce((sum, bucket) => sum + bucket.size, 0);
			if (size < sourceSize) {
				sources = buckets;
				sourceSize = size;
			}
			return size > 0;
		};
		const possible =
			(statuses === undefined || consider([...statuses].map((status) => this.#byStatus.get(status)))) &&
			(moduleId === undefined || consider([this.#byModule.get(moduleId)])) &&
			(itemId === undefined || consider([this.#byItem.get(itemId)])) &&
			(ownerId === undefined || consider([this.#byOwner.get(ownerId)]));
		if (!possible) return { runs: [] };

		// One position per source, walking backwards; several sources (a status list) are merged.
		const positions = sources.map((source) => (after === undefined ? source.end : source.lowerBound(after)) - 1);
		const runs: Run[] = [];
		let last: Entry | undefined;
		for (;;) {
			let pick = -1;
			for (let index = 0; index < sources.length; index++) {
				const source = sources[index] as OrderedIndex<Entry, Position>;
				const position = positions[index] as number;
				if (position < source.start) continue;
				if (pick === -1 || byCreation(source.at(position), current(sources, positions, pick)) > 0) pick = index;
			}
			if (pick === -1) break;
			const source = sources[pick] as OrderedIndex<Entry, Position>;
			const entry = current(sources, positions, pick);
			positions[pick] = (positions[pick] as number) - 1;
			const record = entry.run;
			if (record === undefined || !source.holds(entry)) continue;
			if (statuses !== undefined && !statuses.has(record.status)) continue;
			if (moduleId !== undefined && record.moduleId !== moduleId) continue;
			if (itemId !== undefined && record.itemId !== itemId) continue;
			if (ownerId !== undefined && record.ownerId !== ownerId) continue;
			if (runs.length === limit) return { runs, nextCursor: encodeCursor(last as Entry) };
			runs.push(snapshot(record));
			last = entry;
		}
		return { runs };
	}

	/** The runs of `runIds`, in order, `undefined` for unknown ids. */
	async getRuns(runIds: readonly string[]): Promise<Array<Run | undefined>> {
		if (!Array.isArray(runIds)) throw new ValidationError('runIds', 'an array of run ids', runIds);
		return runIds.map((runId: string) => {
			assertId('runId', runId);
			const record = this.#entries.get(runId)?.run;
			return record === undefined ? undefined : snapshot(record);
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
		const orphans: Entry[] = [];
		for (const status of ['queued', 'running'] as const) {
			const bucket = this.#byStatus.get(status);
			if (bucket === undefined) continue;
			for (let position = bucket.start; position < bucket.end; position++) {
				const entry = bucket.at(position);
				const ownerId = entry.run?.status === status ? entry.run.ownerId : undefined;
				if (ownerId !== undefined && !((this.#leases.get(ownerId) ?? 0) > now)) orphans.push(entry);
			}
		}

		// Each update runs to completion when called (nothing in it waits), so the whole reap is one atomic step.
		const reaped = orphans.map((entry) => {
			const { runId, ownerId, status } = entry.run as StoredRun;
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

	// Queues a run that just became terminal for eviction and cleanup.
	#end(entry: Entry, record: StoredRun): void {
		entry.endedAt = record.completedAt ?? record.updatedAt;
		this.#ended.insert(entry);
	}

	#remove(entry: Entry): void {
		const record = entry.run as StoredRun;
		entry.run = undefined;
		this.#entries.delete(record.runId);
		this.#all.markDead();
		leave(this.#byStatus, record.status);
		leave(this.#byModule, record.moduleId);
		if (record.itemId !== undefined) leave(this.#byItem, record.itemId);
		if (record.ownerId !== undefined) leave(this.#byOwner, record.ownerId);
		if (isTerminalStatus(record.status)) this.#ended.markDead();
	}
}

function current(sources: ReadonlyArray<OrderedIndex<Entry, Position>>, positions: readonly number[], index: number): Entry {
	return (sources[index] as OrderedIndex<Entry, Position>).at(positions[index] as number);
}

// Adds `entry` to the bucket for `key`, creating the bucket (live while `liveness(key)` says so) if needed.
function join<K>(
	buckets: Map<K, OrderedIndex<Entry, Position>>,
	key: K,
	entry: Entry,
	liveness: (key: K) => (entry: Entry) => boolean,
): void {
	let bucket = buckets.get(key);
	if (bucket === undefined) {
		bucket = new OrderedIndex<Entry, Position>(byCreation, liveness(key));
		buckets.set(key, bucket);
	}
	bucket.insert(entry);
}

// Records that one run left the bucket for `key` (its state already says so); drops the bucket once empty.
function leave<K>(buckets: Map<K, OrderedIndex<Entry, Position>>, key: K): void {
	const bucket = buckets.get(key);
	if (bucket === undefined) return;
	bucket.markDead();
	if (bucket.size === 0) buckets.delete(key);
}

// Validates `run` and builds the stored record from its known fields, copying user values.
function toStoredRun(run: Run): StoredRun {
	assertRun(run);
	const { runId, moduleId, status, priority, createdAt, updatedAt } = run;
	const record: StoredRun = { runId, moduleId, status, priority, parameters: cloneValue(run.parameters), createdAt, updatedAt };
	if (run.moduleName !== undefined) record.moduleName = run.moduleName;
	if (run.itemId !== undefined) record.itemId = run.itemId;
	if (run.ownerId !== undefined) record.ownerId = run.ownerId;
	if (run.progress !== undefined) record.progress = cloneValue(run.progress);
	if (run.result !== undefined) record.result = cloneValue(run.result);
	if (run.error !== undefined) record.error = cloneValue(run.error);
	if (run.startedAt !== undefined) record.startedAt = run.startedAt;
	if (run.completedAt !== undefined) record.completedAt = run.completedAt;
	if (run.metadata !== undefined) record.metadata = cloneValue(run.metadata);
	return record;
}

function toSet(statuses: RunStatus[] | undefined): Set<RunStatus> | undefined {
	return statuses === undefined ? undefined : new Set(statuses);
}

function snapshot(record: StoredRun): Run {
	const copy = { ...record };
	copy.parameters = cloneValue(record.parameters);
	if (record.progress !== undefined) copy.progress = cloneValue(record.progress);
	if (record.result !== undefined) copy.result = cloneValue(record.result);
	if (record.error !== undefined) copy.error = cloneValue(record.error);
	if (record.metadata !== undefined) copy.metadata = cloneValue(record.metadata);
	return copy;
}

// Returned by copyPlain for anything it leaves to structuredClone.
const NOT_PLAIN = Symbol('not plain');
// Deeper trees (and cycles) go to structuredClone.
const MAX_PLAIN_DEPTH = 16;

/**
 * A deep copy of `value` as `structuredClone` makes it, or `value` itself when it cannot be
 * cloned (it holds a function, say). Primitives are returned as they are.
 */
function cloneValue<T>(value: T): T {
	if (typeof value !== 'object' || value === null) return value;
	// Plain data, the usual case, is copied by hand: an order of magnitude cheaper than structuredClone.
	const copy = copyPlain(value, 0);
	if (copy !== NOT_PLAIN) return copy as T;
	try {
		return structuredClone(value);
	} catch {
		return value;
	}
}

// Copies a tree of plain objects, dense arrays and primitives; NOT_PLAIN for anything else.
function copyPlain(value: object, depth: number): unknown {
	if (depth > MAX_PLAIN_DEPTH) return NOT_PLAIN;
	if (Array.isArray(value)) {
		if (Object.getPrototypeOf(value) !== Array.prototype) return NOT_PLAIN;
		const copy: unknown[] = new Array(value.length);
		for (let index = 0; index < value.length; index++) {
			// structuredClone keeps holes; leave sparse arrays to it.
			if (!(index in value)) return NOT_PLAIN;
			const item = copyMember(value[index], depth);
			if (item === NOT_PLAIN) return NOT_PLAIN;
			copy[index] = item;
		}
		return copy;
	}
	if (Object.getPrototypeOf(value) !== Object.prototype) return NOT_PLAIN;
	const copy: Record<string, unknown> = {};
	for (const key of Object.keys(value)) {
		// Assigning an own `__proto__` key would set the prototype instead.
		if (key === '__proto__') return NOT_PLAIN;
		const item = copyMember((value as Record<string, unknown>)[key], depth);
		if (item === NOT_PLAIN) return NOT_PLAIN;
		copy[key] = item;
	}
	return copy;
}

function copyMember(value: unknown, depth: number): unknown {
	switch (typeof value) {
		case 'object':
			return value === null ? null : copyPlain(value, depth + 1);
		case 'function':
		case 'symbol':
			return NOT_PLAIN;
		default:
			return value;
	}
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

/**
 * A {@link RunRegistry} on Redis (standalone or Sentinel): several processes share one registry,
 * and with the lease methods (`heartbeat`, `releaseOwner`, `reapOrphans`) the runs of an instance
 * that died are marked failed by the others.
 *
 * Each run is a hash; listing is served by sorted sets scored by `createdAt`. Every write is one
 * Lua script that changes the run and its index entries together, so each is atomic. See
 * `docs/redis.md` for the key layout.
 */
import type { Redis } from 'ioredis';

import { IllegalTransitionError, RunExistsError, ValidationError } from '../errors.js';
import type { RunPage, RunQuery, RunRegistry, UpdateRunOptions } from '../registry.js';
import type { Run, RunPatch, RunStatus } from '../run.js';
import { assertId, assertOptionalString, assertPatch, assertRun, isValidId, parseStatusFilter } from '../run-validation.js';
import { redisKeys, scriptKeys, type RedisKeys } from './keys.js';
import { SCRIPTS, runScript, type LuaScript } from './scripts.js';

/** Options for {@link RedisRunRegistry}. */
export interface RedisRunRegistryOptions {
	/**
	 * An ioredis client, connected or connecting. The registry never closes or reconfigures it.
	 * It must have no `keyPrefix`: the registry prefixes its keys itself.
	 */
	readonly client: Redis;
	/**
	 * The beginning of every key (`{prefix}:run:{runId}`, …): 1 to 128 printable characters without
	 * whitespace, braces, backslashes or `*?[]`. Use one prefix per deployment.
	 * @default 'runledger'
	 */
	readonly prefix?: string;
	/**
	 * When set, a run that ends (completed, failed, cancelled) is expired by Redis this many
	 * milliseconds later, with its index entries. A positive integer.
	 */
	readonly terminalTtlMs?: number;
}

type MutableRun = { -readonly [K in keyof Run]: Run[K] };

const DEFAULT_LIMIT = 100;
// Not stored, as it is what most runs have (see toFields and fromHash).
const DEFAULT_PRIORITY = 'normal';
const MAX_LIMIT = 10_000;
const CLEANUP_BATCH = 1_000;
// Ids become parts of keys: 1 to 256 characters, no control characters (what the manager accepts).
const JSON_RULE = 'a value JSON can represent (no BigInt, function, symbol, non-finite number or cycle)';

/**
 * A {@link RunRegistry} on Redis through an ioredis client.
 *
 * - Every mutation (add, compare-and-set update, delete, cleanup, reap) is one Lua script: the run
 *   and its index entries change together or not at all, and the status checks happen inside it.
 * - `updatedAt`, cleanup cut-offs, lease expiry and reap times use Redis' clock (`TIME`).
 * - User values (`parameters`, `result`, `metadata`, `progress`, `error`) are stored as the JSON
 *   text `JSON.stringify` makes of them, and come back as `JSON.parse` reads it. A value JSON cannot
 *   represent (a BigInt, a function, a symbol, NaN or ±Infinity, a cycle) is refused with a
 *   `ValidationError`, never silently dropped.
 *
 * @example
 * ```ts
 * const registry = new RedisRunRegistry({ client: new Redis(process.env.REDIS_URL), prefix: 'myapp:runs', terminalTtlMs: 7 * 86_400_000 });
 * ```
 */
export class RedisRunRegistry implements RunRegistry {
	readonly #client: Redis;
	readonly #keys: RedisKeys;
	readonly #common: { readonly keys: readonly string[]; readonly args: readonly string[] };
	// '' when runs never expire.
	readonly #ttlArg: string;

	/** @throws {ValidationError} When an option is invalid, or the client has a `keyPrefix`. */
	constructor(options: RedisRunRegistryOptions) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { client, prefix = 'runledger', terminalTtlMs } = options;
		expectClient(client);
		if (terminalTtlMs !== undefined && !(Number.isSafeInteger(terminalTtlMs) && terminalTtlMs >= 1)) {
			throw new ValidationError('terminalTtlMs', 'a positive integer (milliseconds)', terminalTtlMs);
		}
		this.#client = client;
		this.#keys = redisKeys(prefix);
		this.#common = scriptKeys(this.#keys);
		this.#ttlArg = terminalTtlMs === undefined ? '' : String(terminalTtlMs);
	}

	/** The key layout in use: every key and channel name of this registry. */
	get keys(): RedisKeys {
		return this.#keys;
	}

	/**
	 * Records `run` with its index entries.
	 * @throws {RunExistsError} When a run with this id is stored.
	 * @throws {ValidationError} When `run` is not a run, or holds a value JSON cannot represent.
	 */
	async addRun(run: Run): Promise<void> {
		const fields = toFields(run);
		const args = [
			run.runId,
			this.#ttlArg,
			run.status,
			run.moduleId,
			run.itemId ?? '',
			run.ownerId ?? '',
			String(run.createdAt),
			String(run.completedAt ?? run.updatedAt),
			...fields,
		];
		const added = await this.#run(SCRIPTS.addRun, args);
		if (added !== 1) throw new RunExistsError(run.runId);
	}

	/** The run, or `undefined` when the id is unknown (or it expired). */
	async getRun(runId: string): Promise<Run | undefined> {
		assertId('runId', runId);
		return fromHash(runId, await this.#client.hgetall(this.#keys.run(runId)));
	}

	/** The runs of `runIds` in one round trip (a pipeline), in order, `undefined` for unknown ids. */
	async getRuns(runIds: readonly string[]): Promise<Array<Run | undefined>> {
		if (!Array.isArray(runIds)) throw new ValidationError('runIds', 'an array of run ids', runIds);
		runIds.forEach((runId, index) => assertId(`runIds[${index}]`, runId));
		if (runIds.length === 0) return [];
		const pipeline = this.#client.pipeline();
		for (const runId of runIds) pipeline.hgetall(this.#keys.run(runId));
		const replies = (await pipeline.exec()) ?? [];
		return runIds.map((runId, index) => {
			const [error, hash] = replies[index] ?? [new Error('No reply from the pipeline'), undefined];
			if (error) throw error;
			return fromHash(runId, hash as Record<string, string>);
		});
	}

	/**
	 * Applies `patch` atomically and stamps `updatedAt` with Redis' time (never moving it back).
	 * Resolves `undefined` when the run is missing or its status is not in `options.ifStatus`.
	 * @throws {IllegalTransitionError} When the change is illegal or the run is terminal; nothing changes.
	 * @throws {ValidationError} When the patch holds a value of the wrong type; nothing changes.
	 */
	async updateRun(runId: string, patch: RunPatch, options: UpdateRunOptions = {}): Promise<Run | undefined> {
		assertId('runId', runId);
		const fields = patchFields(patch);
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const ifStatus = parseStatusFilter('options.ifStatus', options.ifStatus);
		if (ifStatus !== undefined && ifStatus.length === 0) return undefined;
		const args = [
			runId,
			this.#ttlArg,
			ifStatus?.join(',') ?? '',
			patch.status ?? '',
			patch.ownerId ?? '',
			...fields,
		];
		const reply = (await this.#run(SCRIPTS.updateRun, args)) as [number, ...string[]] | null;
		if (reply === null) return undefined;
		if (reply[0] === 0) throw new IllegalTransitionError(runId, reply[1] as RunStatus, reply[2] as RunStatus);
		// The reply leaves out the patched fields: they are the ones just sent.
		const hash = pairs(reply, 1);
		for (let index = 0; index + 1 < fields.length; index += 2) hash[fields[index] as string] = fields[index + 1] as string;
		return fromHash(runId, hash);
	}

	/**
	 * Runs matching `query`, newest first by `createdAt` (ties: the greater runId first, byte-wise).
	 * Served from the smallest index covering the query; the cursor is a position, so it stays valid
	 * when runs are added or deleted, the one it ends on included.
	 * @throws {ValidationError} When a filter, `limit` (an integer from 1 to 10,000) or `cursor` is invalid.
	 */
	async listRuns(query: RunQuery = {}): Promise<RunPage> {
		if (typeof query !== 'object' || query === null) throw new ValidationError('query', 'an object', query);
		const statuses = parseStatusFilter('query.status', query.status);
		const { moduleId, itemId, ownerId, limit = DEFAULT_LIMIT, cursor } = query;
		assertOptionalString('query.moduleId', moduleId);
		assertOptionalString('query.itemId', itemId);
		assertOptionalString('query.ownerId', ownerId);
		if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
			throw new ValidationError('query.limit', `an integer from 1 to ${MAX_LIMIT}`, limit);
		}
		const after = cursor === undefined ? undefined : decodeCursor(cursor);
		if (statuses !== undefined && statuses.length === 0) return { runs: [] };

		const filter = (value: string | undefined): string => (value === undefined ? '' : `=${value}`);
		const reply = (await this.#run(SCRIPTS.listRuns, [
			String(limit),
			after?.createdAt ?? '',
			after?.runId ?? '',
			filter(moduleId),
			filter(itemId),
			filter(ownerId),
			statuses?.join(',') ?? '',
		])) as [number, ...Array<string | string[]>];

		const runs: Run[] = [];
		let last: { createdAt: string; runId: string } | undefined;
		for (let index = 1; index + 1 < reply.length; index += 2) {
			const runId = reply[index] as string;
			const hash = pairs(reply[index + 1] as string[]);
			const run = fromHash(runId, hash);
			if (run === undefined) continue;
			runs.push(run);
			last = { createdAt: hash.createdAt as string, runId };
		}
		return reply[0] === 1 && last !== undefined ? { runs, nextCursor: encodeCursor(last.createdAt, last.runId) } : { runs };
	}

	/** Removes a run, active or not, with its index entries. Resolves `true` when there was one. */
	async deleteRun(runId: string): Promise<boolean> {
		assertId('runId', runId);
		return (await this.#run(SCRIPTS.deleteRun, [runId])) === 1;
	}

	/**
	 * Removes terminal runs that ended (`completedAt`, else `updatedAt`) more than `maxAgeMs` before
	 * Redis' current time, 1,000 per script call. Active runs are never removed.
	 * @throws {ValidationError} When `maxAgeMs` is not a non-negative finite number.
	 */
	async cleanupOldRuns(maxAgeMs: number): Promise<number> {
		if (typeof maxAgeMs !== 'number' || !Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
			throw new ValidationError('maxAgeMs', 'a non-negative finite number', maxAgeMs);
		}
		let removed = 0;
		for (;;) {
			const [taken, count] = (await this.#run(SCRIPTS.cleanupOldRuns, [String(maxAgeMs), String(CLEANUP_BATCH)])) as [number, number];
			removed += count;
			if (taken < CLEANUP_BATCH) return removed;
		}
	}

	/** Renews the lease of `ownerId` for `ttlMs`: `SET {prefix}:owner:{ownerId} 1 PX ttlMs`, expired by Redis itself. */
	async heartbeat(ownerId: string, ttlMs: number): Promise<void> {
		assertId('ownerId', ownerId);
		if (!(Number.isSafeInteger(ttlMs) && ttlMs >= 1)) throw new ValidationError('ttlMs', 'a positive integer (milliseconds)', ttlMs);
		await this.#client.set(this.#keys.lease(ownerId), '1', 'PX', ttlMs);
	}

	/** Ends the lease of `ownerId` at once. Its active runs become reapable. */
	async releaseOwner(ownerId: string): Promise<void> {
		assertId('ownerId', ownerId);
		await this.#client.del(this.#keys.lease(ownerId));
	}

	/**
	 * Marks FAILED, with `error.name` 'OwnerLostError' and `completedAt` Redis' time, every queued
	 * or running run whose owner has no lease; runs without an owner are never reaped. One script.
	 * @returns The ids of the runs reaped.
	 */
	async reapOrphans(): Promise<string[]> {
		return (await this.#run(SCRIPTS.reapOrphans, [this.#ttlArg])) as string[];
	}

	/** Nothing to release: the client is the host's and stays open. */
	async close(): Promise<void> {}

	#run(script: LuaScript, args: readonly string[]): Promise<unknown> {
		return runScript(this.#client, script, this.#common.keys, [...this.#common.args, ...args]);
	}
}

/** Throws unless `client` looks like an ioredis client without a `keyPrefix`. */
export function expectClient(client: unknown): asserts client is Redis {
	if (typeof client !== 'object' || client === null || typeof (client as { duplicate?: unknown }).duplicate !== 'function') {
		throw new ValidationError('client', 'an ioredis client', client);
	}
	const keyPrefix = (client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix;
	if (keyPrefix !== undefined && keyPrefix !== '') {
		throw new ValidationError(
			'client.options.keyPrefix',
			'unset: runledger prefixes its keys itself (option `prefix`), and Redis does not prefix pub/sub channels',
			keyPrefix,
		);
	}
}

// The hash of a run: field, value, … Numbers as String() writes them (exact); user values as JSON text.
function toFields(run: Run): string[] {
	assertRun(run);
	const { moduleId, status, priority, createdAt, updatedAt } = run;

	const fields = ['moduleId', moduleId, 'status', status, 'createdAt', String(createdAt), 'updatedAt', String(updatedAt)];
	// The defaults are not stored (fewer bytes per run); fromHash restores them.
	if (priority !== DEFAULT_PRIORITY) fields.push('priority', priority);
	if (run.parameters === undefined) fields.push('parameters', '');
	else {
		const parameters = toJson('run.parameters', run.parameters);
		if (parameters !== '{}') fields.push('parameters', parameters);
	}
	if (run.moduleName !== undefined) fields.push('moduleName', run.moduleName);
	if (run.itemId !== undefined) fields.push('itemId', run.itemId);
	if (run.ownerId !== undefined) fields.push('ownerId', run.ownerId);
	if (run.startedAt !== undefined) fields.push('startedAt', String(run.startedAt));
	if (run.completedAt !== undefined) fields.push('completedAt', String(run.completedAt));
	for (const field of ['progress', 'result', 'error', 'metadata'] as const) {
		const value: unknown = run[field];
		if (value !== undefined) fields.push(field, toJson(`run.${field}`, value));
	}
	return fields;
}

// The hash fields a patch sets, besides status, ownerId (separate arguments) and updatedAt (stamped in Lua).
function patchFields(patch: RunPatch): string[] {
	assertPatch(patch);
	const fields: string[] = [];
	if (patch.priority !== undefined) fields.push('priority', patch.priority);
	if (patch.startedAt !== undefined) fields.push('startedAt', String(patch.startedAt));
	if (patch.completedAt !== undefined) fields.push('completedAt', String(patch.completedAt));
	for (const field of ['progress', 'result', 'error', 'metadata'] as const) {
		const value: unknown = patch[field];
		if (value !== undefined) fields.push(field, toJson(`patch.${field}`, value));
	}
	return fields;
}

// JSON.stringify, refusing what it would drop or change silently, and cycles.
function toJson(field: string, value: unknown): string {
	let text: string | undefined;
	try {
		text = JSON.stringify(value, (_key, member: unknown) => {
			if (typeof member === 'bigint' || typeof member === 'function' || typeof member === 'symbol') {
				throw new ValidationError(field, JSON_RULE, member);
			}
			if (typeof member === 'number' && !Number.isFinite(member)) throw new ValidationError(field, JSON_RULE, member);
			return member;
		});
	} catch (error) {
		if (error instanceof ValidationError) throw error;
		// A cycle, or a toJSON that threw.
		throw new ValidationError(field, JSON_RULE, value);
	}
	if (text === undefined) throw new ValidationError(field, JSON_RULE, value);
	return text;
}

// A run from its hash (as HGETALL gives it); undefined for an empty hash (no such run). A missing
// `priority` is 'normal', a missing `parameters` is `{}` and an empty one `undefined` (see toFields).
function fromHash(runId: string, hash: Record<string, string>): Run | undefined {
	if (hash.status === undefined) return undefined;
	const run: MutableRun = {
		runId,
		moduleId: hash.moduleId as string,
		status: hash.status as RunStatus,
		priority: (hash.priority ?? DEFAULT_PRIORITY) as Run['priority'],
		parameters: hash.parameters === undefined ? {} : hash.parameters === '' ? undefined : JSON.parse(hash.parameters),
		createdAt: Number(hash.createdAt),
		updatedAt: Number(hash.updatedAt),
	};
	if (hash.moduleName !== undefined) run.moduleName = hash.moduleName;
	if (hash.itemId !== undefined) run.itemId = hash.itemId;
	if (hash.ownerId !== undefined) run.ownerId = hash.ownerId;
	if (hash.startedAt !== undefined) run.startedAt = Number(hash.startedAt);
	if (hash.completedAt !== undefined) run.completedAt = Number(hash.completedAt);
	if (hash.progress !== undefined) run.progress = JSON.parse(hash.progress);
	if (hash.result !== undefined) run.result = JSON.parse(hash.result);
	if (hash.error !== undefined) run.error = JSON.parse(hash.error);
	if (hash.metadata !== undefined) run.metadata = JSON.parse(hash.metadata);
	return run;
}

// [field, value, field, value, …] from `start` on, as an object (no prototype, so no field name is special).
function pairs(flat: readonly unknown[], start = 0): Record<string, string> {
	const object: Record<string, string> = Object.create(null);
	for (let index = start; index + 1 < flat.length; index += 2) object[flat[index] as string] = flat[index + 1] as string;
	return object;
}

// A cursor is the position of the last run of a page: base64url of `${createdAt}:${runId}`.
function encodeCursor(createdAt: string, runId: string): string {
	return Buffer.from(`${createdAt}:${runId}`).toString('base64url');
}

function decodeCursor(cursor: unknown): { createdAt: string; runId: string } {
	if (typeof cursor === 'string' && cursor !== '') {
		const text = Buffer.from(cursor, 'base64url').toString();
		const colon = text.indexOf(':');
		const createdAt = text.slice(0, colon);
		const runId = text.slice(colon + 1);
		// Canonical parts only, and re-encoding must give the cursor back.
		if (
			colon > 0 &&
			Number.isFinite(Number(createdAt)) &&
			String(Number(createdAt)) === createdAt &&
			isValidId(runId) &&
			encodeCursor(createdAt, runId) === cursor
		) {
			return { createdAt, runId };
		}
	}
	throw new ValidationError('query.cursor', 'a nextCursor returned by listRuns', cursor);
}

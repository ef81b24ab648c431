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
import type { RunPage, RunQuery, RunRegistry, RunWrite, RunWriteResult, UpdateRunOptions } from '../registry.js';
import { addTokenOf } from '../registry-internals.js';
import { DEFAULT_MAX_RESULT_BYTES, assertResultSize, parseMaxResultBytes } from '../result-size.js';
import type { Run, RunPatch, RunStatus } from '../run.js';
import { assertId, assertPatch, assertRun, assertRunWrite, isValidId, parseRunQuery, parseStatusFilter } from '../run-validation.js';
import type { CancelPublication, CancelPublishingRegistry } from './cancel-publication.js';
import { redisKeys, scriptKeys, type RedisKeys } from './keys.js';
import { SCRIPTS, ScriptRunner, type LuaScript } from './scripts.js';

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
	 * @default undefined (runs are kept until deleted or cleaned up)
	 */
	readonly terminalTtlMs?: number;
	/**
	 * The largest `result` stored, in bytes of UTF-8 of its JSON text. An `addRun`, `updateRun` or
	 * batch write with a larger one is refused with a `ResultTooLargeError` before anything is
	 * sent to Redis. A positive integer, or `Infinity` for no cap.
	 * @default 1_048_576 (1 MiB)
	 */
	readonly maxResultBytes?: number;
	/**
	 * With the registry's first command, reads `CONFIG GET maxmemory-policy` (alongside, never
	 * delaying or failing a call) and, unless it is `noeviction`, emits one process warning with
	 * code `RUNLEDGER_MAXMEMORY_POLICY`: a Redis that evicts keys loses runs and index entries
	 * silently. A server that refuses CONFIG (an ACL, a managed Redis) is not reported.
	 * @default true
	 */
	readonly checkMaxmemoryPolicy?: boolean;
}

type MutableRun = { -readonly [K in keyof Run]: Run[K] };

// Not stored, as it is what most runs have (see otherFields and fromHash).
const DEFAULT_PRIORITY = 'normal';
const CLEANUP_BATCH = 1_000;
// applyWrites sends at most this many writes, or about this many characters of arguments, per
// script call, so that no one call holds Redis (single-threaded) for long.
const WRITES_PER_CALL = 1_000;
const CHARACTERS_PER_CALL = 8 * 1024 * 1024;
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
export class RedisRunRegistry implements RunRegistry, CancelPublishingRegistry {
	readonly #client: Redis;
	readonly #keys: RedisKeys;
	readonly #common: { readonly keys: readonly string[]; readonly args: readonly string[] };
	// '' when runs never expire.
	readonly #ttlArg: string;
	readonly #maxResultBytes: number;
	// FCALL of runledger's function library, or EVAL where the server refuses functions.
	readonly #scripts = new ScriptRunner();
	// The maxmemory-policy check: 'todo' until a command starts it, and again when it could not reach Redis.
	#policyCheck: 'todo' | 'pending' | 'done';

	/** @throws {ValidationError} When an option is invalid, or the client has a `keyPrefix`. */
	constructor(options: RedisRunRegistryOptions) {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { client, prefix = 'runledger', terminalTtlMs, maxResultBytes = DEFAULT_MAX_RESULT_BYTES, checkMaxmemoryPolicy = true } = options;
		expectClient(client);
		if (terminalTtlMs !== undefined && !(Number.isSafeInteger(terminalTtlMs) && terminalTtlMs >= 1)) {
			throw new ValidationError('terminalTtlMs', 'a positive integer (milliseconds)', terminalTtlMs);
		}
		if (typeof checkMaxmemoryPolicy !== 'boolean') throw new ValidationError('checkMaxmemoryPolicy', 'a boolean', checkMaxmemoryPolicy);
		this.#client = client;
		this.#keys = redisKeys(prefix);
		this.#common = scriptKeys(this.#keys);
		this.#ttlArg = terminalTtlMs === undefined ? '' : String(terminalTtlMs);
		this.#maxResultBytes = parseMaxResultBytes(maxResultBytes);
		this.#policyCheck = checkMaxmemoryPolicy ? 'todo' : 'done';
	}

	/** The key layout in use: every key and channel name of this registry. */
	get keys(): RedisKeys {
		return this.#keys;
	}

	/** The injected client, which the registry's scripts run on (for `RedisCancellationBus.sharesServerWith`). */
	get client(): Redis {
		return this.#client;
	}

	/**
	 * Records `run` with its index entries.
	 * @throws {RunExistsError} When a run with this id is stored.
	 * @throws {ValidationError} When `run` is not a run, or holds a value JSON cannot represent.
	 * @throws {ResultTooLargeError} When its `result` is over `maxResultBytes`; nothing is sent.
	 */
	async addRun(run: Run): Promise<void> {
		assertRun(run);
		const added = await this.#run(SCRIPTS.addRun, [this.#ttlArg, ...this.#addArgs(run)]);
		if (added !== 1) throw new RunExistsError(run.runId);
	}

	/** The run, or `undefined` when the id is unknown (or it expired). */
	async getRun(runId: string): Promise<Run | undefined> {
		assertId('runId', runId);
		return fromHash(runId, await this.#redis().hgetall(this.#keys.run(runId)));
	}

	/** The runs of `runIds` in one round trip (a pipeline), in order, `undefined` for unknown ids. */
	async getRuns(runIds: readonly string[]): Promise<Array<Run | undefined>> {
		if (!Array.isArray(runIds)) throw new ValidationError('runIds', 'an array of run ids', runIds);
		runIds.forEach((runId, index) => assertId(`runIds[${index}]`, runId));
		if (runIds.length === 0) return [];
		const pipeline = this.#redis().pipeline();
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
	 * @throws {ResultTooLargeError} When its `result` is over `maxResultBytes`; nothing is sent.
	 */
	async updateRun(runId: string, patch: RunPatch, options: UpdateRunOptions = {}): Promise<Run | undefined> {
		return this.#update(runId, patch, options, undefined);
	}

	/**
	 * As {@link updateRun}, and in the same script, hence the same round trip, `PUBLISH
	 * publication.channel publication.message` when the patch applies (nothing is published when
	 * the run is missing, its status is not `ifStatus`, or the change is illegal). Made for a cancel
	 * of a run owned elsewhere, with `RedisCancellationBus.prepare`. The message is published
	 * before the run is written, inside the script: a PUBLISH that Redis refuses (an ACL without
	 * the channel) rejects the call with nothing changed, and subscribers get the message only
	 * once the script has ended, so never before the change is visible.
	 * @throws {ValidationError} As `updateRun`, or when `publication` is not a channel and a message.
	 */
	async updateRunAndPublish(runId: string, patch: RunPatch, options: UpdateRunOptions | undefined, publication: CancelPublication): Promise<Run | undefined> {
		if (
			typeof publication !== 'object' ||
			publication === null ||
			typeof publication.channel !== 'string' ||
			publication.channel === '' ||
			typeof publication.message !== 'string'
		) {
			throw new ValidationError('publication', 'a { channel, message } of strings, the channel not empty', publication);
		}
		return this.#update(runId, patch, options ?? {}, publication);
	}

	/**
	 * Applies `writes` in order, each exactly as the equivalent `addRun` / `updateRun` (with
	 * `ifStatus`) would, in one script call per 1,000 writes (one round trip for most batches).
	 * Each write is checked first, as every registry checks a write (an update's `ifStatus` is one
	 * status, never absent nor a list) and as the single call checks its arguments: one that fails (a
	 * `ValidationError`, a `ResultTooLargeError`) is not sent, and its result says so; the others
	 * still go. Resolves one result per write, in order: an add of a taken id fails with a
	 * `RunExistsError`, an illegal update with an `IllegalTransitionError`, an update of a missing
	 * run or one whose status is not `ifStatus` is `missed`.
	 * @throws When a script call fails (a lost connection, say): the writes of that call and of the
	 * ones after it may or may not have landed.
	 */
	async applyWrites(writes: readonly RunWrite[]): Promise<RunWriteResult[]> {
		if (!Array.isArray(writes)) throw new ValidationError('writes', 'an array of writes', writes);
		const results: RunWriteResult[] = [];
		// The writes to send, with where their result goes.
		const sent: Array<{ readonly index: number; readonly runId: string; readonly add: boolean; readonly args: readonly string[] }> = [];
		for (let index = 0; index < writes.length; index++) {
			const write = writes[index] as RunWrite;
			try {
				// As every registry checks a write: an update's ifStatus is one status, never absent. (Checked
				// once: the arguments are then built without checking again.)
				assertRunWrite(write);
				if (write.type === 'add') {
					sent.push({ index, runId: write.run.runId, add: true, args: this.#addArgs(write.run) });
				} else {
					sent.push({ index, runId: write.runId, add: false, args: this.#updateArgs(write.runId, write.patch, () => [write.ifStatus]) as string[] });
				}
			} catch (error) {
				results[index] = { outcome: 'failed', error };
			}
		}

		for (let start = 0; start < sent.length; ) {
			const argv = [...this.#common.args, this.#ttlArg];
			let end = start;
			let characters = 0;
			while (end < sent.length && end - start < WRITES_PER_CALL && (end === start || characters < CHARACTERS_PER_CALL)) {
				const write = sent[end++] as (typeof sent)[number];
				argv.push(write.add ? 'a' : 'u', String(write.args.length));
				for (const arg of write.args) {
					argv.push(arg);
					characters += arg.length;
				}
			}
			const replies = (await this.#scripts.run(this.#redis(), SCRIPTS.applyWrites, this.#common.keys, argv)) as Array<number | [RunStatus, RunStatus]>;
			for (let at = start; at < end; at++) {
				const { index, runId, add } = sent[at] as (typeof sent)[number];
				const reply = replies[at - start];
				if (reply === 1) results[index] = APPLIED;
				else if (Array.isArray(reply)) results[index] = { outcome: 'failed', error: new IllegalTransitionError(runId, reply[0], reply[1]) };
				else results[index] = add ? { outcome: 'failed', error: new RunExistsError(runId) } : MISSED;
			}
			start = end;
		}
		return results;
	}

	/**
	 * Runs matching `query`, newest first by `createdAt` (ties: the greater runId first, byte-wise).
	 * Served from the smallest index covering the query; the cursor is a position, so it stays valid
	 * when runs are added or deleted, the one it ends on included.
	 * @throws {ValidationError} When a filter, `limit` (an integer from 1 to 10,000) or `cursor` is invalid.
	 */
	async listRuns(query: RunQuery = {}): Promise<RunPage> {
		const { statuses, moduleId, itemId, ownerId, limit, cursor } = parseRunQuery(query);
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
		await this.#redis().set(this.#keys.lease(ownerId), '1', 'PX', ttlMs);
	}

	/** Ends the lease of `ownerId` at once. Its active runs become reapable. */
	async releaseOwner(ownerId: string): Promise<void> {
		assertId('ownerId', ownerId);
		await this.#redis().del(this.#keys.lease(ownerId));
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

	// The arguments of an add of a checked run, as add-run.lua and apply-writes.lua take them (after the TTL).
	#addArgs(run: Run): string[] {
		const fields = otherFields(run, this.#maxResultBytes);
		return [
			run.runId,
			run.status,
			run.moduleId,
			run.itemId ?? '',
			run.ownerId ?? '',
			String(run.createdAt),
			String(run.completedAt ?? run.updatedAt),
			...fields,
		];
	}

	// The arguments of an update of a checked id and patch, as update-run.lua and apply-writes.lua
	// take them (from the runId on); undefined when `ifStatus` is empty, which nothing can match.
	// The patch's values are turned into JSON (which may refuse them) before `readIfStatus` checks
	// its option: updateRun's order.
	#updateArgs(runId: string, patch: RunPatch, readIfStatus: () => readonly RunStatus[] | undefined): string[] | undefined {
		const fields = patchFields(patch, this.#maxResultBytes);
		const ifStatus = readIfStatus();
		if (ifStatus !== undefined && ifStatus.length === 0) return undefined;
		return [runId, ifStatus?.join(',') ?? '', patch.status ?? '', patch.ownerId ?? '', ...fields];
	}

	async #update(runId: string, patch: RunPatch, options: UpdateRunOptions, publication: CancelPublication | undefined): Promise<Run | undefined> {
		assertId('runId', runId);
		assertPatch(patch);
		const args = this.#updateArgs(runId, patch, () => {
			if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
			return parseStatusFilter('options.ifStatus', options.ifStatus);
		});
		if (args === undefined) return undefined;
		const reply = (await this.#run(SCRIPTS.updateRun, [this.#ttlArg, publication?.channel ?? '', publication?.message ?? '', ...args])) as
			| [number, ...string[]]
			| null;
		if (reply === null) return undefined;
		if (reply[0] === 0) throw new IllegalTransitionError(runId, reply[1] as RunStatus, reply[2] as RunStatus);
		// The reply leaves out the patched fields: they are the ones just sent (args[4..]).
		const hash = pairs(reply, 1);
		for (let index = 4; index + 1 < args.length; index += 2) hash[args[index] as string] = args[index + 1] as string;
		return fromHash(runId, hash);
	}

	#run(script: LuaScript, args: readonly string[]): Promise<unknown> {
		return this.#scripts.run(this.#redis(), script, this.#common.keys, [...this.#common.args, ...args]);
	}

	// The client, for a command about to be sent; the first such command starts the maxmemory-policy check.
	#redis(): Redis {
		if (this.#policyCheck === 'todo') {
			this.#policyCheck = 'pending';
			// A microtask later: behind the command that triggered it, which never waits for it.
			queueMicrotask(() => this.#checkMaxmemoryPolicy());
		}
		return this.#client;
	}

	#checkMaxmemoryPolicy(): void {
		let reply: Promise<unknown>;
		try {
			reply = this.#client.config('GET', 'maxmemory-policy');
		} catch {
			this.#policyCheck = 'done';
			return;
		}
		reply
			.then(
				(value) => {
					this.#policyCheck = 'done';
					// ['maxmemory-policy', policy]; a server that hides the setting answers [].
					const policy = Array.isArray(value) ? (value[1] as unknown) : undefined;
					if (typeof policy !== 'string' || policy === 'noeviction') return;
					process.emitWarning(
						`Redis evicts keys when its memory is full (maxmemory-policy "${policy}"): the runledger registry "${this.#keys.prefix}" would then lose runs and index entries silently. Set maxmemory-policy to noeviction (see runledger's docs/redis.md, Operations), or pass checkMaxmemoryPolicy: false to RedisRunRegistry to silence this.`,
						{ code: 'RUNLEDGER_MAXMEMORY_POLICY' },
					);
				},
				(error: unknown) => {
					// Refused (an ACL, a managed Redis that renames CONFIG): nothing to say, ever. Not
					// answered (no connection): a later command tries again.
					this.#policyCheck = error instanceof Error && error.name === 'ReplyError' ? 'done' : 'todo';
				},
			)
			.catch(() => undefined);
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

const APPLIED: RunWriteResult = { outcome: 'applied' };
const MISSED: RunWriteResult = { outcome: 'missed' };

// The hash of a checked run but for the fields an add passes on their own (status, moduleId,
// itemId, ownerId, createdAt), which add_run in lib.lua stores too: field, value, … Numbers as
// String() writes them (exact); user values as JSON text, the result at most `maxResultBytes` of it.
function otherFields(run: Run, maxResultBytes: number): string[] {
	const fields = ['updatedAt', String(run.updatedAt)];
	// The defaults are not stored (fewer bytes per run); fromHash restores them.
	if (run.priority !== DEFAULT_PRIORITY) fields.push('priority', run.priority);
	if (run.parameters === undefined) fields.push('parameters', '');
	else {
		const parameters = toJson('run.parameters', run.parameters);
		if (parameters !== '{}') fields.push('parameters', parameters);
	}
	if (run.moduleName !== undefined) fields.push('moduleName', run.moduleName);
	if (run.startedAt !== undefined) fields.push('startedAt', String(run.startedAt));
	if (run.completedAt !== undefined) fields.push('completedAt', String(run.completedAt));
	// Kept so that an add the client sends twice is recognised as this one (never read back).
	const token = addTokenOf(run);
	if (token !== undefined) fields.push('addToken', token);
	for (const field of ['progress', 'result', 'error', 'metadata'] as const) {
		const value: unknown = run[field];
		if (value === undefined) continue;
		const json = toJson(`run.${field}`, value);
		if (field === 'result') assertResultSize(json, maxResultBytes);
		fields.push(field, json);
	}
	return fields;
}

// The hash fields a checked patch sets, besides status, ownerId (separate arguments) and updatedAt
// (stamped in Lua); the result at most `maxResultBytes` of JSON.
function patchFields(patch: RunPatch, maxResultBytes: number): string[] {
	const fields: string[] = [];
	if (patch.priority !== undefined) fields.push('priority', patch.priority);
	if (patch.startedAt !== undefined) fields.push('startedAt', String(patch.startedAt));
	if (patch.completedAt !== undefined) fields.push('completedAt', String(patch.completedAt));
	for (const field of ['progress', 'result', 'error', 'metadata'] as const) {
		const value: unknown = patch[field];
		if (value === undefined) continue;
		const json = toJson(`patch.${field}`, value);
		if (field === 'result') assertResultSize(json, maxResultBytes);
		fields.push(field, json);
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
// `priority` is 'normal', a missing `parameters` is `{}` and an empty one `undefined` (see otherFields).
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

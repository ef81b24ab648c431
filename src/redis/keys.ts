/**
 * Every Redis key and channel name runledger uses, all built here and all starting with the
 * prefix. Lua scripts never spell a key themselves: they get the fixed keys in KEYS and the
 * beginnings of the per-run, per-module, … keys in ARGV (see {@link scriptKeys}), and only append
 * an id to those.
 *
 * Layout, for the prefix `p` (`docs/redis.md` has the types and purposes):
 *
 * | key | type |
 * | --- | --- |
 * | `p:run:{runId}` | hash: the run |
 * | `p:idx:status:{status}` | sorted set: runs in that status, scored by createdAt |
 * | `p:idx:module:{moduleId}` | sorted set: runs of that module, scored by createdAt |
 * | `p:idx:item:{itemId}` | sorted set: runs of that item, scored by createdAt |
 * | `p:idx:owner:{ownerId}` | sorted set: runs of that owner, scored by createdAt |
 * | `p:idx:ended` | sorted set: terminal runs, scored by end time (completedAt, else updatedAt) |
 * | `p:idx:expiry` | sorted set: terminal runs with a TTL, scored by expiry time |
 * | `p:idx:expiry-info` | hash: runId → the index entries of a run with a TTL, to remove them once the run expired |
 * | `p:owners` | set: owners that have queued or running runs |
 * | `p:active:{ownerId}` | set: the queued and running runs of that owner |
 * | `p:owner:{ownerId}` | string: the owner's lease (heartbeat), expired by Redis |
 * | `p:cancel` | pub/sub channel: cancel commands |
 */
import { ValidationError } from '../errors.js';

/** Every key and channel of one prefix. */
export interface RedisKeys {
	readonly prefix: string;
	/** Hash holding one run. */
	run(runId: string): string;
	/** Sorted set of the runs in `status` by createdAt. */
	status(status: string): string;
	/** Sorted set of the runs of `moduleId` by createdAt. */
	module(moduleId: string): string;
	/** Sorted set of the runs of `itemId` by createdAt. */
	item(itemId: string): string;
	/** Sorted set of the runs owned by `ownerId` by createdAt. */
	owner(ownerId: string): string;
	/** Sorted set of terminal runs by end time. */
	readonly ended: string;
	/** Sorted set of terminal runs with a TTL by expiry time. */
	readonly expiry: string;
	/** Hash runId → packed index entries of an expiring run. */
	readonly expiryInfo: string;
	/** Set of owners with active runs. */
	readonly owners: string;
	/** Set of the active runs of `ownerId`. */
	active(ownerId: string): string;
	/** String key whose existence is the lease of `ownerId`. */
	lease(ownerId: string): string;
	/** Pub/sub channel of cancel commands. */
	readonly cancelChannel: string;
	/** SCAN pattern matching every key of this prefix (the prefix holds no glob characters). */
	readonly pattern: string;
}

// Printable, no whitespace, no glob characters (SCAN patterns) and no braces (cluster hash tags).
const prefixPattern = /^[^\s\u0000-\u001F\u007F*?[\]{}\\]{1,128}$/u;

/** Throws a ValidationError unless `prefix` is 1 to 128 printable characters without spaces, `*?[]{}` or `\`. */
export function validatePrefix(prefix: unknown): asserts prefix is string {
	if (typeof prefix !== 'string' || !prefixPattern.test(prefix)) {
		throw new ValidationError('prefix', 'a string of 1 to 128 printable characters without whitespace, braces, backslashes or *?[]', prefix);
	}
}

/** The key layout of `prefix` (validated). */
export function redisKeys(prefix: string): RedisKeys {
	validatePrefix(prefix);
	const p = prefix;
	return {
		prefix: p,
		run: (runId) => `${p}:run:${runId}`,
		status: (status) => `${p}:idx:status:${status}`,
		module: (moduleId) => `${p}:idx:module:${moduleId}`,
		item: (itemId) => `${p}:idx:item:${itemId}`,
		owner: (ownerId) => `${p}:idx:owner:${ownerId}`,
		ended: `${p}:idx:ended`,
		expiry: `${p}:idx:expiry`,
		expiryInfo: `${p}:idx:expiry-info`,
		owners: `${p}:owners`,
		active: (ownerId) => `${p}:active:${ownerId}`,
		lease: (ownerId) => `${p}:owner:${ownerId}`,
		cancelChannel: `${p}:cancel`,
		pattern: `${p}:*`,
	};
}

/**
 * What every script receives first: KEYS[1..4] the fixed keys, ARGV[1..7] the beginnings of the
 * keys the script completes with an id. Script-specific arguments start at ARGV[8].
 */
export function scriptKeys(keys: RedisKeys): { readonly keys: readonly string[]; readonly args: readonly string[] } {
	return {
		keys: [keys.ended, keys.expiry, keys.expiryInfo, keys.owners],
		args: [keys.run(''), keys.status(''), keys.module(''), keys.item(''), keys.owner(''), keys.active(''), keys.lease('')],
	};
}

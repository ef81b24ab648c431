/**
 * The registry's Lua scripts, and how they are run: EVALSHA, falling back to EVAL when the
 * server does not have the script (NOSCRIPT: a restart, a failover, `SCRIPT FLUSH`). Nothing is
 * registered on the caller's client (no `defineCommand`): the client is used as it was given.
 */
import { createHash } from 'node:crypto';

import type { Redis } from 'ioredis';

import addRunSource from './scripts/add-run.lua';
import applyWritesSource from './scripts/apply-writes.lua';
import cleanupOldRunsSource from './scripts/cleanup-old-runs.lua';
import deleteRunSource from './scripts/delete-run.lua';
import libSource from './scripts/lib.lua';
import listRunsSource from './scripts/list-runs.lua';
import reapOrphansSource from './scripts/reap-orphans.lua';
import updateRunSource from './scripts/update-run.lua';

/** One script: its full source (lib.lua, then the script) and that source's SHA1. */
export interface LuaScript {
	readonly name: string;
	readonly source: string;
	readonly sha: string;
}

function script(name: string, body: string): LuaScript {
	const source = `${libSource}\n${body}`;
	return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Every script of the registry. */
export const SCRIPTS = {
	addRun: script('add-run', addRunSource),
	updateRun: script('update-run', updateRunSource),
	applyWrites: script('apply-writes', applyWritesSource),
	deleteRun: script('delete-run', deleteRunSource),
	listRuns: script('list-runs', listRunsSource),
	cleanupOldRuns: script('cleanup-old-runs', cleanupOldRunsSource),
	reapOrphans: script('reap-orphans', reapOrphansSource),
} as const satisfies Record<string, LuaScript>;

/** Runs `script` with EVALSHA, or EVAL when Redis answers NOSCRIPT (which also caches it again). */
export async function runScript(client: Redis, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
	try {
		return await client.evalsha(script.sha, keys.length, ...keys, ...args);
	} catch (error) {
		if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
		return await client.eval(script.source, keys.length, ...keys, ...args);
	}
}

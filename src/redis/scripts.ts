/**
 * The registry's Lua scripts, and how they are run. They are one Redis Functions library, loaded
 * once per server (`FUNCTION LOAD`) and called with `FCALL`: lib.lua's definitions are then made
 * once, not at every call (17–20 µs of each call in Redis on the benchmark machine:
 * bench/profile/script-call-cost.ts). A server that lost the library (`FUNCTION FLUSH`, a restart
 * without persistence) has it loaded again by the first call that misses it. A server that
 * refuses functions (an ACL without `FUNCTION` or `FCALL`, a proxy that does not know them) gets
 * the same scripts as EVAL scripts: EVALSHA, falling back to EVAL on NOSCRIPT. Nothing is
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

/** One script: the function that runs it in the library, and its EVAL form (lib.lua, then the script) with that form's SHA1. */
export interface LuaScript {
	readonly name: string;
	readonly functionName: string;
	readonly source: string;
	readonly sha: string;
}

/** The library every script is a function of. */
export interface LuaLibrary {
	/** `runledger_` and 16 hex digits of the code's SHA1: two versions of runledger on one server keep a library each. */
	readonly name: string;
	/** The `FUNCTION LOAD` text. */
	readonly source: string;
}

const BODIES = {
	addRun: addRunSource,
	updateRun: updateRunSource,
	applyWrites: applyWritesSource,
	deleteRun: deleteRunSource,
	listRuns: listRunsSource,
	cleanupOldRuns: cleanupOldRunsSource,
	reapOrphans: reapOrphansSource,
} as const;

type ScriptName = keyof typeof BODIES;

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const kebab = (name: string): string => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
const snake = (name: string): string => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
// lib.lua's first line is the `#!lua` shebang of the EVAL form; a library has its own.
const libDefinitions = libSource.slice(libSource.indexOf('\n') + 1);

// The library's code after its shebang line: lib.lua, then each script as a function
// `script_<name>(KEYS, ARGV)`, so that the scripts read the same names in both forms. No flags:
// every function may write, as the EVAL form's bare `#!lua` says (refused as a whole when Redis
// is out of memory).
const libraryCode = [
	libDefinitions,
	...Object.entries(BODIES).map(([name, body]) => `local function script_${snake(name)}(KEYS, ARGV)\n${body}\nend`),
].join('\n');
const libraryName = `runledger_${sha1(libraryCode).slice(0, 16)}`;
const functionName = (name: string): string => `${libraryName}_${snake(name)}`;

export const LIBRARY: LuaLibrary = {
	name: libraryName,
	source: [
		`#!lua name=${libraryName}`,
		libraryCode,
		...Object.keys(BODIES).map(
			(name) => `redis.register_function('${functionName(name)}', function(keys, args) begin_call(keys, args) return script_${snake(name)}(keys, args) end)`,
		),
	].join('\n'),
};

function script(name: ScriptName): LuaScript {
	const source = `${libSource}\nbegin_call(KEYS, ARGV)\n${BODIES[name]}`;
	return { name: kebab(name), functionName: functionName(name), source, sha: sha1(source) };
}

/** Every script of the registry. */
export const SCRIPTS = {
	addRun: script('addRun'),
	updateRun: script('updateRun'),
	applyWrites: script('applyWrites'),
	deleteRun: script('deleteRun'),
	listRuns: script('listRuns'),
	cleanupOldRuns: script('cleanupOldRuns'),
	reapOrphans: script('reapOrphans'),
} as const satisfies Record<ScriptName, LuaScript>;

const replyMessage = (error: unknown): string | undefined =>
	error instanceof Error && error.name === 'ReplyError' ? error.message : undefined;

/**
 * Runs the scripts of one registry. Starts with the library; turns to EVAL for good when the
 * server refuses functions (see the file's header).
 */
export class ScriptRunner {
	// Whether scripts go by FCALL. Only ever turns false: the server refused FCALL or FUNCTION LOAD.
	#functions = true;
	// The FUNCTION LOAD in flight, shared by the calls that found the library missing meanwhile.
	#loading: Promise<void> | undefined;

	async run(client: Redis, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
		if (this.#functions) {
			try {
				return await client.call('FCALL', script.functionName, keys.length, ...keys, ...args);
			} catch (error) {
				const message = replyMessage(error);
				if (message === undefined) throw error;
				if (isRefusal(message, 'fcall')) {
					this.#functions = false;
				} else if (!message.startsWith('ERR Function not found')) {
					throw error;
				}
			}
			if (this.#functions) await this.#load(client);
			if (this.#functions) return await client.call('FCALL', script.functionName, keys.length, ...keys, ...args);
		}
		return runEval(client, script, keys, args);
	}

	#load(client: Redis): Promise<void> {
		if (this.#loading === undefined) {
			const loading = client.call('FUNCTION', 'LOAD', LIBRARY.source).then(
				() => undefined,
				(error: unknown) => {
					const message = replyMessage(error);
					// Not answered (a lost connection): the next call tries again.
					if (message === undefined) throw error;
					// Loaded by another instance meanwhile: the same name is the same code.
					if (message.includes('already exists')) return;
					if (isRefusal(message, 'function|load')) {
						this.#functions = false;
						return;
					}
					// Anything else (out of memory, a replica, still loading its data) may pass: this
					// call fails with it, and the next call that misses the library tries again.
					throw error;
				},
			);
			this.#loading = loading;
			void loading.then(
				() => this.#forget(loading),
				() => this.#forget(loading),
			);
		}
		return this.#loading;
	}

	#forget(loading: Promise<void>): void {
		if (this.#loading === loading) this.#loading = undefined;
	}
}

// A refusal of the command itself, for good (not of what a script does, nor a passing state):
// unknown to the server or a proxy, or denied by an ACL (`NOPERM ... 'fcall' command`,
// `... 'function|load' command`).
function isRefusal(message: string, command: string): boolean {
	return (
		message.startsWith('ERR unknown command') ||
		message.startsWith('ERR unknown subcommand') ||
		(message.startsWith('NOPERM') && message.toLowerCase().includes(`'${command}'`))
	);
}

/** Runs `script` with EVALSHA, or EVAL when Redis answers NOSCRIPT (which also caches it again). */
async function runEval(client: Redis, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
	try {
		return await client.evalsha(script.sha, keys.length, ...keys, ...args);
	} catch (error) {
		if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
		return await client.eval(script.source, keys.length, ...keys, ...args);
	}
}

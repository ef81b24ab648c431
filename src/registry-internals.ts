/**
 * What runledger's own registries understand beyond the public `RunRegistry` contract. Both are
 * symbols made with `Symbol.for`, so that two copies of the package still recognise each other;
 * a registry that knows neither simply works without them.
 */
import type { RunWrite, RunWriteResult } from './registry.js';
import type { Run } from './run.js';

/**
 * An in-process registry's synchronous entry point: the manager then writes each change as it
 * happens, instead of batching per tick and waiting for a promise.
 */
export const applyWriteNow: unique symbol = Symbol.for('runledger.applyWriteNow') as never;

/** Applies `write` before returning, exactly as a batch of one through `applyWrites` would. */
export type WriteNow = (write: RunWrite) => RunWriteResult;

/**
 * A non-enumerable property of a run handed to `addRun` / an add write: a random token for this
 * one attempt to create the run. A registry that stores it can tell an add sent twice (a client
 * re-sending after a reconnect) from another run under the same id, and treat the second as done.
 */
export const addToken: unique symbol = Symbol.for('runledger.addToken') as never;

/** A copy of `run` carrying `token` as its (non-enumerable) {@link addToken}. */
export function withAddToken(run: Run, token: string): Run {
	return Object.defineProperty({ ...run }, addToken, { value: token, enumerable: false });
}

/** The {@link addToken} of `run`, if it has one. */
export function addTokenOf(run: Run): string | undefined {
	const token = (run as { [addToken]?: unknown })[addToken];
	return typeof token === 'string' ? token : undefined;
}

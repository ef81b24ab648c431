/**
 * What runledger's own registries understand beyond the public `RunRegistry` contract. Both are
 * symbols made with `Symbol.for`, so that two copies of the package still recognise each other;
 * a registry that knows neither simply works without them.
 */
import type { RunWrite, RunWriteResult } from './registry.js';
import type { Run } from './run.js';

/**
 * An in-process registry's synchronous entry point: the manager then writes each change as it
 * happens, instead of batching per tick and waiting for a promise. (Versioned: a copy of the
 * package that sends writes differently does not find it, and batches instead.)
 */
export const applyWriteNow: unique symbol = Symbol.for('runledger.applyWriteNow/2') as never;

/**
 * What the manager hands over with each write of one run: a place where the registry keeps a
 * handle to its record between writes, so that later writes skip the lookup by id; and, when the
 * manager wants the registry to find its runs by id (`owner` set), the slot itself is linked to
 * the record on the add.
 */
export interface WriteSlot {
	readonly runId: string;
	/** Set by the registry; opaque to the manager. */
	handle: unknown;
	/** The manager generated the run's id (96 or 120 random bits): its first add need not look for a run holding it already. */
	readonly freshId: boolean;
	/** Who finds this run through {@link findSlot}; undefined when nobody does (no linking). */
	readonly owner: object | undefined;
	/** Set by the registry while {@link findSlot} finds this slot; cleared by {@link releaseSlot}. */
	linked: boolean;
}

/**
 * An in-process registry's ids for new runs: the manager takes its generated ids from here, so
 * that the registry can store and find those runs without hashing. (An id it hands out and never
 * gets to store costs nothing.)
 */
export const newRunId: unique symbol = Symbol.for('runledger.newRunId/1') as never;
export type NewRunId = () => string;

/** Finds the slot of `owner` linked to run `runId`, even after the record was deleted; undefined when there is none. */
export const findSlot: unique symbol = Symbol.for('runledger.findSlot/1') as never;
export type FindSlot = (runId: string, owner: object) => WriteSlot | undefined;

/** Unlinks a slot (its run is done): the registry no longer finds it, nor holds on to it. */
export const releaseSlot: unique symbol = Symbol.for('runledger.releaseSlot/1') as never;
export type ReleaseSlot = (slot: WriteSlot) => void;

/**
 * Applies `write` before returning, as a batch of one through `applyWrites` would. The write comes
 * from a manager, built from input it validated: the registry need not check it again.
 */
export type WriteNow = (write: RunWrite, slot: WriteSlot) => RunWriteResult;

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

/**
 * An internal capability of in-process registries: applying one write synchronously, so that the
 * manager writes each change as it happens instead of batching per tick and waiting for a promise.
 * Not part of the public `RunRegistry` contract; `Symbol.for` so that two copies of the package
 * still recognise each other's registries.
 */
import type { RunWrite, RunWriteResult } from './registry.js';

export const applyWriteNow: unique symbol = Symbol.for('runledger.applyWriteNow') as never;

/** Applies `write` before returning, exactly as a batch of one through `applyWrites` would. */
export type WriteNow = (write: RunWrite) => RunWriteResult;

/**
 * An internal capability of in-process registries: applying a batch of writes synchronously, so
 * that the manager writes each change as it happens instead of batching per tick and waiting for
 * a promise. Not part of the public `RunRegistry` contract; `Symbol.for` so that two copies of
 * the package still recognise each other's registries.
 */
import type { RunWrite, RunWriteResult } from './registry.js';

export const applyWritesNow: unique symbol = Symbol.for('runledger.applyWritesNow') as never;

/** Applies `writes` in order before returning, exactly as `applyWrites` would. */
export type WritesNow = (writes: readonly RunWrite[]) => RunWriteResult[];

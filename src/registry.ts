/**
 * The contract between the manager and wherever runs are recorded. The host injects an
 * implementation; `runledger/testing` holds the conformance suite every adapter must pass.
 */
import type { Run, RunPatch, RunStatus } from './run.js';

/** A filter and page request for {@link RunRegistry.listRuns}. All filters combine with AND. */
export interface RunQuery {
	/** One status, or any of several (an empty array matches nothing). */
	readonly status?: RunStatus | readonly RunStatus[];
	readonly moduleId?: string;
	readonly itemId?: string;
	readonly ownerId?: string;
	/**
	 * Most runs to return: an integer from 1 to 10,000, else a `ValidationError`.
	 * @default 100
	 */
	readonly limit?: number;
	/** The `nextCursor` of the previous page. Opaque; one the registry did not make is a `ValidationError`. */
	readonly cursor?: string;
}

/** One page of runs, newest first. `nextCursor` is absent on the last page. */
export interface RunPage<P = unknown, R = unknown> {
	readonly runs: Array<Run<P, R>>;
	readonly nextCursor?: string;
}

/** Options for {@link RunRegistry.updateRun}. */
export interface UpdateRunOptions {
	/** Compare-and-set: apply the patch only while the run's status is this one (or one of these). */
	readonly ifStatus?: RunStatus | readonly RunStatus[];
}

/**
 * One write of a batch handed to {@link RunRegistry.applyWrites}: add a whole run (as
 * `addRun` would), or apply a patch under a compare-and-set (as `updateRun` with `ifStatus` would).
 */
export type RunWrite =
	| { readonly type: 'add'; readonly run: Run }
	| { readonly type: 'update'; readonly runId: string; readonly patch: RunPatch; readonly ifStatus: RunStatus };

/**
 * What became of one write of a batch:
 * - `applied`: stored, exactly as the single call would have stored it;
 * - `missed`: an update found no run, or the run's status was not `ifStatus` (nothing changed);
 * - `failed`: the single call would have rejected with `error` (`RunExistsError` for an add of a
 *   taken id, `IllegalTransitionError`, `ValidationError`); nothing of this write changed.
 */
export type RunWriteResult =
	| { readonly outcome: 'applied' }
	| { readonly outcome: 'missed' }
	| { readonly outcome: 'failed'; readonly error: unknown };

/**
 * Where runs are recorded. Every method is async; every run returned is a snapshot that the
 * caller may mutate without changing what is stored.
 */
export interface RunRegistry {
	/** Records a new run as given (its `updatedAt` included). Rejects with a `RunExistsError` when the id is taken. */
	addRun(run: Run): Promise<void>;

	/** The run, or `undefined` when the id is unknown. */
	getRun(runId: string): Promise<Run | undefined>;

	/**
	 * Atomically applies `patch` and stamps `updatedAt` (never earlier than before). Resolves `undefined` when the run is
	 * missing or its status is not in `ifStatus`; rejects with an `IllegalTransitionError`, changing
	 * nothing, when the patch would make an illegal status change or touch a terminal run.
	 */
	updateRun(runId: string, patch: RunPatch, options?: UpdateRunOptions): Promise<Run | undefined>;

	/**
	 * Runs matching `query`, newest first by `createdAt` (ties in a fixed order the adapter
	 * chooses), paged with an opaque cursor. A run added while paging never makes another
	 * appear twice or be skipped.
	 */
	listRuns(query?: RunQuery): Promise<RunPage>;

	/** Removes a run. Resolves `true` when there was one. */
	deleteRun(runId: string): Promise<boolean>;

	/**
	 * Removes terminal runs that ended (`completedAt`, else `updatedAt`) more than `maxAgeMs` ago;
	 * active runs are never removed. Resolves the count.
	 */
	cleanupOldRuns(maxAgeMs: number): Promise<number>;

	/**
	 * Optional: the runs of `runIds` in one round trip, `undefined` for unknown ids, in the same
	 * order. The manager's reconcile uses it when present (else one `getRun` per run).
	 */
	getRuns?(runIds: readonly string[]): Promise<Array<Run | undefined>>;

	/**
	 * Optional, for registries shared by several instances: renews the lease of `ownerId`,
	 * which expires `ttlMs` later on the registry's own clock (never the host's).
	 */
	heartbeat?(ownerId: string, ttlMs: number): Promise<void>;

	/** Optional: ends the lease of `ownerId` at once (a clean shutdown). */
	releaseOwner?(ownerId: string): Promise<void>;

	/**
	 * Optional: marks every queued or running run whose `ownerId` has no live lease FAILED with
	 * `error.name` 'OwnerLostError', atomically per run. Runs without an owner are never reaped.
	 * Resolves the ids of the runs reaped.
	 */
	reapOrphans?(): Promise<string[]>;

	/**
	 * Optional: applies several writes in one call (one round trip for a remote registry), in
	 * order. Each write is atomic on its own, exactly as the equivalent `addRun` / `updateRun`
	 * call; the batch as a whole is not a transaction. Resolves one result per write, in the same
	 * order. Rejects only when the outcome of the whole batch is unknown (a lost connection, say):
	 * any write of it may or may not have landed. The manager sends its writes through it when present.
	 */
	applyWrites?(writes: readonly RunWrite[]): Promise<RunWriteResult[]>;

	/** Releases what the registry owns. Never closes a client the host injected. */
	close?(): Promise<void>;
}

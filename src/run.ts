/**
 * The run model: what a run is, its statuses and which status changes are legal.
 * No I/O lives here; every other module builds on these definitions.
 */

/** Every status a run can be in. */
export const RunStatus = {
	QUEUED: 'queued',
	RUNNING: 'running',
	COMPLETED: 'completed',
	FAILED: 'failed',
	CANCELLED: 'cancelled',
} as const;

/** One of the values of {@link RunStatus}. */
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** The priorities a run can have, most urgent first. */
export const RUN_PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;

/** One of {@link RUN_PRIORITIES}. Queued runs start in priority order, FIFO within one priority. */
export type RunPriority = (typeof RUN_PRIORITIES)[number];

/** How far a run has come, as last reported by its task. */
export interface RunProgress {
	/** 0 to 100. */
	readonly percent: number;
	readonly message?: string;
}

/** A serializable description of why a run failed. */
export interface RunErrorInfo {
	readonly name: string;
	readonly message: string;
	readonly stack?: string;
	readonly code?: string;
}

/**
 * One run of a task: the record kept in a {@link RunRegistry}.
 * Times are Unix epoch milliseconds.
 */
export interface Run<P = unknown, R = unknown> {
	readonly runId: string;
	/** The kind of work, e.g. `'video-render'`; concurrency can be limited per module. */
	readonly moduleId: string;
	readonly moduleName?: string;
	/** A group key, such as a chat or document id: `cancelItemTasks(itemId)` stops every run of a group. */
	readonly itemId?: string;
	readonly status: RunStatus;
	readonly priority: RunPriority;
	readonly parameters: P;
	readonly progress?: RunProgress;
	readonly result?: R;
	readonly error?: RunErrorInfo;
	readonly createdAt: number;
	readonly updatedAt: number;
	readonly startedAt?: number;
	readonly completedAt?: number;
	/** The id of the manager instance that runs it. */
	readonly ownerId?: string;
	readonly metadata?: Readonly<Record<string, unknown>>;
}

/** The fields of a run that an update may change. The registry stamps `updatedAt` itself. */
export type RunPatch<R = unknown> = {
	-readonly [K in 'status' | 'progress' | 'result' | 'error' | 'startedAt' | 'completedAt' | 'ownerId' | 'metadata' | 'priority']?: Run<unknown, R>[K];
};

const statuses = new Set<string>(Object.values(RunStatus));
const priorities = new Set<string>(RUN_PRIORITIES);

/** Whether `value` is one of the {@link RunStatus} values. */
export function isRunStatus(value: unknown): value is RunStatus {
	return typeof value === 'string' && statuses.has(value);
}

/** Whether `value` is one of the {@link RUN_PRIORITIES}. */
export function isRunPriority(value: unknown): value is RunPriority {
	return typeof value === 'string' && priorities.has(value);
}

/** Whether a run in `status` has ended: completed, failed or cancelled. Terminal states never change. */
export function isTerminalStatus(status: RunStatus): boolean {
	return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/**
 * Whether a run may go from `from` to `to`: queued → running | cancelled | failed;
 * running → completed | failed | cancelled. `from === to` is an update that keeps the
 * status, legal only while the run is active.
 */
export function isLegalTransition(from: RunStatus, to: RunStatus): boolean {
	// A switch rather than a table of sets: this runs for every write a registry applies.
	switch (from) {
		case 'queued':
			return to === 'queued' || to === 'running' || to === 'cancelled' || to === 'failed';
		case 'running':
			return to === 'running' || to === 'completed' || to === 'failed' || to === 'cancelled';
		default:
			return false;
	}
}

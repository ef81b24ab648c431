/**
 * The events a {@link BackgroundTaskManager} emits. Each run event carries a read-only
 * snapshot of the run as it is after the change.
 */
import type { RunledgerError } from './errors.js';
import type { Run } from './run.js';

export interface BackgroundTaskManagerEvents {
	/** A run was accepted and waits for a slot. */
	queued: [run: Run];
	/**
	 * A run took a slot and is RUNNING. Its function is called at once — or, for a run that others
	 * could see QUEUED in the registry, once the registry confirms the start (a run cancelled
	 * elsewhere meanwhile goes on to `cancelled` without its function ever being called).
	 */
	started: [run: Run];
	/** A run reported progress (throttled by `progressThrottleMs`). */
	progress: [run: Run];
	/** A run's task returned; `run.result` holds its value. */
	completed: [run: Run];
	/** A run's task threw, rejected or timed out; `run.error` says why. */
	failed: [run: Run];
	/** A run was cancelled. */
	cancelled: [run: Run];
	/** An internal failure that did not stop the manager, such as a registry write that failed and will be retried. */
	error: [error: RunledgerError];
}

/** What every in-process contender implements: run `count` trivial tasks to completion. */

/** The trivial task of the throughput workload. */
export const trivialTask = async (): Promise<number> => 1;

/** The task of the retained-heap workload: no parameters, no result. */
export const emptyTask = async (): Promise<void> => {};

export interface Prepared {
	/** Starts `count` tasks and resolves once all have settled (and, for trackers, are recorded). Timed. */
	readonly run: () => Promise<void>;
	/** Releases timers and connections. Not timed. */
	readonly teardown?: () => Promise<void>;
}

export interface Contender {
	/** Short key used in tables and ratios. */
	readonly key: string;
	/** What it is, for the table. */
	readonly label: string;
	/** Builds a fresh instance (limiter, manager, registry) for one timed run of `count` tasks. */
	prepare(count: number): Prepared | Promise<Prepared>;
}

/**
 * The manager's record of one run it executes, from `startTask` until the run is terminal,
 * its function has settled and its last registry write has landed.
 */
import type { CancelledError } from './errors.js';
import type { WriteSlot } from './registry-internals.js';
import type { Queued } from './run-queue.js';
import type { Run, RunPatch, RunPriority, RunProgress, RunStatus } from './run.js';
import { isTerminalStatus } from './run.js';

/** What a task function receives. */
export interface TaskContext<P = unknown> {
	readonly runId: string;
	/** Aborts when the run is cancelled (reason: a `CancelledError`) or times out (reason: a `TimeoutError`). */
	readonly signal: AbortSignal;
	readonly parameters: P;
	/**
	 * Records progress: `percent` is clamped to 0–100; NaN and non-numbers throw a `ValidationError`.
	 * Reports after the run has ended are ignored.
	 */
	reportProgress(percent: number, message?: string): void;
}

/** The work of a run: a function called with its {@link TaskContext}. */
export type TaskFunction<P = unknown, R = unknown> = (context: TaskContext<P>) => Promise<R> | R;

/** The {@link TaskContext} of one run: a class, so that its getter and method live on the prototype. */
export class RunContext<P = unknown> implements TaskContext<P> {
	readonly #execution: Execution;
	readonly #report: (execution: Execution, percent: number, message: string | undefined) => void;
	#reportBound: ((percent: number, message?: string) => void) | undefined;

	constructor(execution: Execution, report: (execution: Execution, percent: number, message: string | undefined) => void) {
		this.#execution = execution;
		this.#report = report;
	}

	get runId(): string {
		return this.#execution.runId;
	}

	get parameters(): P {
		return this.#execution.view.parameters as P;
	}

	// Made on first use: most tasks never look at their signal.
	get signal(): AbortSignal {
		return (this.#execution.controller ??= new AbortController()).signal;
	}

	// A getter handing out a bound function, made on first use: tasks destructure it
	// (`({ reportProgress }) => …`), and most never use it.
	get reportProgress(): (percent: number, message?: string) => void {
		return (this.#reportBound ??= (percent: number, message?: string) => this.#report(this.#execution, percent, message));
	}
}

export class Execution implements Queued, WriteSlot {
	readonly runId: string;
	readonly moduleId: string;
	readonly itemId: string | undefined;
	readonly priority: RunPriority;
	readonly seq: number;
	readonly timeoutMs: number | undefined;

	/** The manager's current view of the run. Replaced on every change, never mutated: events hand it out. */
	view: Run;
	/** The work to do; dropped once called so that its closure can be collected. */
	task: TaskFunction | PromiseLike<unknown> | undefined;

	/** The task function was called and has not settled yet: the run holds a concurrency slot. */
	executing = false;
	/** Holds a slot but waits for its QUEUED → RUNNING write to land before its function is called. */
	gated = false;
	/** Created on the first read of `ctx.signal`, or on abort. */
	controller: AbortController | undefined;
	timeoutTimer: NodeJS.Timeout | undefined;
	/** Set when `shutdown()` aborted the running task: the run ends CANCELLED with this once the task stops. */
	abortedAtShutdown: CancelledError | undefined;

	/** A progress report not yet emitted and written (throttled). */
	progress: RunProgress | undefined;
	progressTimer: NodeJS.Timeout | undefined;
	lastProgressAt = 0;

	/** The status the registry holds, as far as this manager knows; undefined before the first write lands. */
	stored: RunStatus | undefined;
	/** The caller added the record before `startTask`: the first write updates it rather than adding it. */
	adopted: boolean;
	/** The caller chose the id, which may be taken in the registry already: the function waits for the add. */
	readonly chosenId: boolean;
	/** Sent with the add of a run whose id the caller chose, so that the registry can tell a re-sent add from a copy. */
	addToken: string | undefined;
	/** The registry's handle to its record of the run (see `WriteSlot`). */
	handle: unknown = undefined;
	/** Changes not yet sent to the registry, merged in order. */
	pending: RunPatch | undefined;
	/** A write of this run is in flight: writes of one run are sent one at a time, in order. */
	writing = false;
	/** Writes are pending, in flight or waiting for a retry: the writer counts this run as busy. */
	busy = false;
	retryTimer: NodeJS.Timeout | undefined;
	/** Failed attempts of the current write, for its backoff. */
	attempts = 0;
	/** The registry refused a write of this run as invalid once already: a second refusal ends its writes. */
	refused = false;
	/** The registry holds something this manager did not write (a cancel from elsewhere, another run's record): write no more. */
	detached = false;

	/** The terminal event waits for the registry's answer (the owner's lease was in doubt when the run ended). */
	deferredEvent = false;
	/** Done and dropped from the manager's runs: a later change of this run finds it gone. */
	forgotten = false;
	/** `waitForRun` callers, resolved once the terminal state is written. */
	waiters: Array<(run: Run) => void> | undefined;

	constructor(view: Run, task: TaskFunction | PromiseLike<unknown>, seq: number, timeoutMs: number | undefined, adopted: boolean, chosenId: boolean) {
		this.runId = view.runId;
		this.moduleId = view.moduleId;
		this.itemId = view.itemId;
		this.priority = view.priority;
		this.view = view;
		this.task = task;
		this.seq = seq;
		this.timeoutMs = timeoutMs;
		this.adopted = adopted;
		this.chosenId = chosenId;
	}

	/** The manager generated the id: no other run can hold it. */
	get freshId(): boolean {
		return !this.chosenId;
	}

	get isTerminal(): boolean {
		return isTerminalStatus(this.view.status);
	}

	isWaiting(): boolean {
		return this.view.status === 'queued';
	}

	/** Writes are pending, in flight or waiting for a retry. */
	get isWriting(): boolean {
		return this.busy;
	}

	/** Nothing is left to do for this run: it can be forgotten. */
	get isDone(): boolean {
		return this.isTerminal && !this.executing && !this.isWriting;
	}
}

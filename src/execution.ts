/**
 * The manager's record of one run it executes, from `startTask` until the run is terminal,
 * its function has settled and its last registry write has landed.
 */
import { AsyncResource } from 'node:async_hooks';

import type { CancelledError, RunledgerError } from './errors.js';
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

	// Made on first use: most tasks never look at their signal. Asked for after the run was aborted,
	// it comes out aborted with that reason.
	get signal(): AbortSignal {
		const execution = this.#execution;
		let controller = execution.controller;
		if (controller === undefined) {
			controller = execution.controller = new AbortController();
			if (execution.abortReason !== undefined) controller.abort(execution.abortReason);
		}

		return controller.signal;
	}

	// A getter handing out a bound function, made on first use: tasks destructure it
	// (`({ reportProgress }) => …`), and most never use it.
	get reportProgress(): (percent: number, message?: string) => void {
		return (this.#reportBound ??= (percent: number, message?: string) => this.#report(this.#execution, percent, message));
	}
}

// Bits of `Execution.#flags`: one number instead of ten boolean fields (100,000 runs queued in a
// burst each hold an Execution, and every byte of it is copied by the garbage collector).
const EXECUTING = 1;
const GATED = 2;
const ADOPTED = 4;
const CHOSEN_ID = 8;
const WRITING = 16;
const BUSY = 32;
const REFUSED = 64;
const DETACHED = 128;
const DEFERRED_EVENT = 256;
const FORGOTTEN = 512;
const LINKED = 1024;
// Kept by the `view` setter: the status as bits, read without a trip to the view (hot in the queue).
const WAITING = 2048;
const ENDED = 4096;

// What most runs never use: made on the first write of one of its fields.
class RareFields {
	timeoutMs: number | undefined;
	controller: AbortController | undefined;
	abortReason: RunledgerError | undefined;
	timeoutTimer: NodeJS.Timeout | undefined;
	abortedAtShutdown: CancelledError | undefined;
	progress: RunProgress | undefined;
	progressTimer: NodeJS.Timeout | undefined;
	lastProgressAt = 0;
	addToken: string | undefined;
	retryTimer: NodeJS.Timeout | undefined;
	attempts = 0;
	waiters: Array<(run: Run) => void> | undefined;
}

/**
 * An `AsyncResource`, made in `startTask`: it holds the async context of that call (AsyncLocalStorage
 * stores, a trace's active span), which the task function and its timeout run in
 * (`runInAsyncScope`), whichever run's end freed the slot that starts it. Subclassing, as Node's
 * docs do, rather than holding one: a separate resource cost each queued run about 90 bytes.
 */
export class Execution extends AsyncResource implements Queued, WriteSlot {
	readonly seq: number;

	/** The work to do; dropped once called so that its closure can be collected. */
	task: TaskFunction | PromiseLike<unknown> | undefined;
	/** The status the registry holds, as far as this manager knows; undefined before the first write lands. */
	stored: RunStatus | undefined;
	/** The registry's handle to its record of the run (see `WriteSlot`). */
	handle: unknown = undefined;
	/** Changes not yet sent to the registry, merged in order. */
	pending: RunPatch | undefined;
	/** Who finds this run by id through the registry (see `WriteSlot`): the manager's `ActiveRuns`, or undefined. */
	readonly owner: object | undefined;
	/** The neighbours in the manager's list of runs (`ActiveRuns`). */
	previous: Execution | undefined;
	next: Execution | undefined;
	#flags: number;
	#view: Run;
	#rare: RareFields | undefined;

	constructor(view: Run, task: TaskFunction | PromiseLike<unknown>, seq: number, timeoutMs: number | undefined, adopted: boolean, chosenId: boolean, owner: object | undefined) {
		super('RunledgerTask');
		this.#flags = (adopted ? ADOPTED : 0) | (chosenId ? CHOSEN_ID : 0) | statusBits(view);
		this.#view = view;
		this.task = task;
		this.seq = seq;
		this.stored = undefined;
		this.pending = undefined;
		this.owner = owner;
		this.previous = undefined;
		this.next = undefined;
		this.#rare = undefined;
		if (timeoutMs !== undefined) this.#rareFields().timeoutMs = timeoutMs;
	}

	/** The manager's current view of the run. Replaced on every change, never mutated: events hand it out. */
	get view(): Run {
		return this.#view;
	}

	set view(view: Run) {
		this.#view = view;
		this.#flags = (this.#flags & ~(WAITING | ENDED)) | statusBits(view);
	}

	// The run's identity never changes: read from the view rather than kept twice.
	get runId(): string {
		return this.view.runId;
	}

	get moduleId(): string {
		return this.view.moduleId;
	}

	get itemId(): string | undefined {
		return this.view.itemId;
	}

	get priority(): RunPriority {
		return this.view.priority;
	}

	get timeoutMs(): number | undefined {
		return this.#rare?.timeoutMs;
	}

	/** The task function was called and has not settled yet: the run holds a concurrency slot. */
	get executing(): boolean {
		return (this.#flags & EXECUTING) !== 0;
	}

	set executing(value: boolean) {
		this.#flag(EXECUTING, value);
	}

	/** Holds a slot but waits for its QUEUED → RUNNING write to land before its function is called. */
	get gated(): boolean {
		return (this.#flags & GATED) !== 0;
	}

	set gated(value: boolean) {
		this.#flag(GATED, value);
	}

	/** The caller added the record before `startTask`: the first write updates it rather than adding it. */
	get adopted(): boolean {
		return (this.#flags & ADOPTED) !== 0;
	}

	set adopted(value: boolean) {
		this.#flag(ADOPTED, value);
	}

	/** The caller chose the id, which may be taken in the registry already: the function waits for the add. */
	get chosenId(): boolean {
		return (this.#flags & CHOSEN_ID) !== 0;
	}

	/** The manager generated the id: no other run can hold it. */
	get freshId(): boolean {
		return (this.#flags & CHOSEN_ID) === 0;
	}

	/** A write of this run is in flight: writes of one run are sent one at a time, in order. */
	get writing(): boolean {
		return (this.#flags & WRITING) !== 0;
	}

	set writing(value: boolean) {
		this.#flag(WRITING, value);
	}

	/** Writes are pending, in flight or waiting for a retry: the writer counts this run as busy. */
	get busy(): boolean {
		return (this.#flags & BUSY) !== 0;
	}

	set busy(value: boolean) {
		this.#flag(BUSY, value);
	}

	/** The registry refused a write of this run as invalid once already: a second refusal ends its writes. */
	get refused(): boolean {
		return (this.#flags & REFUSED) !== 0;
	}

	set refused(value: boolean) {
		this.#flag(REFUSED, value);
	}

	/** The registry holds something this manager did not write (a cancel from elsewhere, another run's record): write no more. */
	get detached(): boolean {
		return (this.#flags & DETACHED) !== 0;
	}

	set detached(value: boolean) {
		this.#flag(DETACHED, value);
	}

	/** The terminal event waits for the registry's answer (the owner's lease was in doubt when the run ended). */
	get deferredEvent(): boolean {
		return (this.#flags & DEFERRED_EVENT) !== 0;
	}

	set deferredEvent(value: boolean) {
		this.#flag(DEFERRED_EVENT, value);
	}

	/** Done and dropped from the manager's runs: a later change of this run finds it gone. */
	get forgotten(): boolean {
		return (this.#flags & FORGOTTEN) !== 0;
	}

	set forgotten(value: boolean) {
		this.#flag(FORGOTTEN, value);
	}

	/** The registry finds this run by id (see `WriteSlot`). */
	get linked(): boolean {
		return (this.#flags & LINKED) !== 0;
	}

	set linked(value: boolean) {
		this.#flag(LINKED, value);
	}

	/** Created on the first read of `ctx.signal`. */
	get controller(): AbortController | undefined {
		return this.#rare?.controller;
	}

	set controller(value: AbortController | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().controller = value;
	}

	/** Why the run was aborted, while no signal was handed out: the signal is made aborted with it. */
	get abortReason(): RunledgerError | undefined {
		return this.#rare?.abortReason;
	}

	set abortReason(value: RunledgerError | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().abortReason = value;
	}

	get timeoutTimer(): NodeJS.Timeout | undefined {
		return this.#rare?.timeoutTimer;
	}

	set timeoutTimer(value: NodeJS.Timeout | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().timeoutTimer = value;
	}

	/** Set when `shutdown()` aborted the running task: the run ends CANCELLED with this once the task stops. */
	get abortedAtShutdown(): CancelledError | undefined {
		return this.#rare?.abortedAtShutdown;
	}

	set abortedAtShutdown(value: CancelledError | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().abortedAtShutdown = value;
	}

	/** A progress report not yet emitted and written (throttled). */
	get progress(): RunProgress | undefined {
		return this.#rare?.progress;
	}

	set progress(value: RunProgress | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().progress = value;
	}

	get progressTimer(): NodeJS.Timeout | undefined {
		return this.#rare?.progressTimer;
	}

	set progressTimer(value: NodeJS.Timeout | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().progressTimer = value;
	}

	get lastProgressAt(): number {
		return this.#rare?.lastProgressAt ?? 0;
	}

	set lastProgressAt(value: number) {
		this.#rareFields().lastProgressAt = value;
	}

	/** Sent with the add of a run whose id the caller chose, so that the registry can tell a re-sent add from a copy. */
	get addToken(): string | undefined {
		return this.#rare?.addToken;
	}

	set addToken(value: string | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().addToken = value;
	}

	get retryTimer(): NodeJS.Timeout | undefined {
		return this.#rare?.retryTimer;
	}

	set retryTimer(value: NodeJS.Timeout | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().retryTimer = value;
	}

	/** Failed attempts of the current write, for its backoff. */
	get attempts(): number {
		return this.#rare?.attempts ?? 0;
	}

	set attempts(value: number) {
		if (value !== 0 || this.#rare !== undefined) this.#rareFields().attempts = value;
	}

	/** `waitForRun` callers, resolved once the terminal state is written. */
	get waiters(): Array<(run: Run) => void> | undefined {
		return this.#rare?.waiters;
	}

	set waiters(value: Array<(run: Run) => void> | undefined) {
		if (value !== undefined || this.#rare !== undefined) this.#rareFields().waiters = value;
	}

	get isTerminal(): boolean {
		return (this.#flags & ENDED) !== 0;
	}

	isWaiting(): boolean {
		return (this.#flags & WAITING) !== 0;
	}

	/** Writes are pending, in flight or waiting for a retry. */
	get isWriting(): boolean {
		return (this.#flags & BUSY) !== 0;
	}

	/** Nothing is left to do for this run: it can be forgotten. */
	get isDone(): boolean {
		return (this.#flags & (EXECUTING | BUSY | ENDED)) === ENDED;
	}

	#flag(bit: number, value: boolean): void {
		this.#flags = value ? this.#flags | bit : this.#flags & ~bit;
	}

	#rareFields(): RareFields {
		return (this.#rare ??= new RareFields());
	}
}

function statusBits(view: Run): number {
	const { status } = view;
	if (status === 'queued') return WAITING;
	return isTerminalStatus(status) ? ENDED : 0;
}

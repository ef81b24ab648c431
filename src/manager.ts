/**
 * BackgroundTaskManager: runs task functions in-process, returns their run ids at once, and
 * records each run's life — QUEUED → RUNNING → COMPLETED / FAILED / CANCELLED — in the
 * injected registry.
 */
import { EventEmitter } from 'eventemitter3';
import { type CancelAndPublish, cancelInOneTrip } from './cancel-in-one-trip.js';
import { cancelledInfo, ownErrorInfo, toErrorInfo } from './error-info.js';
import type { BackgroundTaskManagerEvents } from './events.js';
import {
	CancelledError,
	QueueFullError,
	RegistryError,
	RunExistsError,
	RunNotFoundError,
	RunledgerError,
	ShutdownError,
	ShutdownTimeoutError,
	TimeoutError,
	ValidationError,
	asRunledgerError,
	withoutStack,
} from './errors.js';
import { ActiveRuns } from './active-runs.js';
import { Execution, RunContext, type TaskFunction } from './execution.js';
import { Housekeeping } from './housekeeping.js';
import {
	type BackgroundTaskManagerOptions,
	type ResolvedOptions,
	assertTimeout,
	resolveOptions,
} from './options.js';
import { isValidId } from './run-validation.js';
import type { RunPage, RunQuery, RunRegistry } from './registry.js';
import { type NewRunId, newRunId } from './registry-internals.js';
import { generateRunId } from './run-id.js';
import { RunQueue } from './run-queue.js';
import { changedView } from './run-view.js';
import { RunWriter, isSameRun } from './run-writer.js';
import {
	type Run,
	type RunErrorInfo,
	type RunPatch,
	type RunPriority,
	type RunStatus,
	isRunPriority,
	isTerminalStatus,
} from './run.js';

/** What `startTask` needs to create a run. */
export interface StartTaskInput<P = unknown> {
	/** @default 20 URL-safe characters: 120 random bits; on a `MemoryRunRegistry`, 96 random bits and 4 characters naming the run's slot in its table */
	readonly runId?: string;
	readonly moduleId: string;
	readonly moduleName?: string;
	readonly itemId?: string;
	/** @default {} */
	readonly parameters?: P;
	/** @default 'normal' */
	readonly priority?: RunPriority;
	/** Overrides the manager's `defaultTimeoutMs` for this run. */
	readonly timeoutMs?: number;
	readonly metadata?: Readonly<Record<string, unknown>>;
}

/** A run the caller already added to the registry, in status QUEUED, with an optional timeout. */
export type StartTaskRun<P = unknown> = Run<P> & { readonly timeoutMs?: number };

/** What `waitAll` reports. */
export interface WaitAllReport {
	/** Every task started before the call has settled and every registry write is done. */
	readonly settled: boolean;
	/** The runs still unsettled or unwritten when the timeout ran out. */
	readonly pending: string[];
}

export interface ShutdownOptions {
	/**
	 * How long running tasks may go on before they are cancelled.
	 * @default 10_000
	 */
	readonly graceMs?: number;
	/**
	 * How long tasks still running after `graceMs` may take to unwind once their signal aborted.
	 * Those that settle in time end CANCELLED; the others FAILED with a `ShutdownTimeoutError`.
	 * @default 1000
	 */
	readonly abortGraceMs?: number;
}

/**
 * What `shutdown` reports. Every run that was active when it began is in exactly one of
 * `finished`, `cancelled` and `timedOut`.
 */
export interface ShutdownReport {
	/** Runs that ended by themselves during the grace period (completed, failed or cancelled elsewhere). */
	readonly finished: string[];
	/** Runs cancelled by the shutdown: queued ones, and running ones whose task stopped within `abortGraceMs` of the abort. */
	readonly cancelled: string[];
	/** Runs whose task ignored the abort for `abortGraceMs`: recorded FAILED with a `ShutdownTimeoutError`. */
	readonly timedOut: string[];
	/** Runs whose task function had still not settled when the shutdown returned (the `timedOut` ones among them). */
	readonly unsettled: string[];
	/** Runs whose last state could not be written to the registry in time. */
	readonly unflushed: string[];
}

/** Counts of `getStats`. */
export interface ManagerStats {
	readonly queued: number;
	readonly running: number;
	/** Runs already terminal (cancelled or timed out) whose task function has not settled: each holds its slot. */
	readonly draining: number;
	/** Terminal counts since the manager was created. */
	readonly completed: number;
	readonly failed: number;
	readonly cancelled: number;
	/** Runs with registry writes outstanding. */
	readonly pendingWrites: number;
}

interface Waiter {
	// The runs still awaited; the waiter resolves when it is empty.
	readonly pending: Set<Execution>;
	readonly isDone: (execution: Execution) => boolean;
	readonly resolve: () => void;
}

// A `waitAll`: it awaits every run with `seq < before`. A run leaves `#runs` exactly when it
// is done, so a count of those still there is all it needs (no set of 100,000 runs to maintain).
interface AllWaiter {
	readonly before: number;
	pending: number;
	readonly resolve: () => void;
}

const SHUTDOWN_REASON = 'shutdown';
// How long past its deadline a shutdown waits for the states it decided at the deadline to be written.
const SHUTDOWN_FLUSH_MS = 150;
// The parameters of a run started without any: one shared empty object rather than one per run
// (registries copy what they store, and read back a fresh copy).
const NO_PARAMETERS: Readonly<Record<string, never>> = Object.freeze({});

export class BackgroundTaskManager extends EventEmitter<BackgroundTaskManagerEvents> {
	readonly #registry: RunRegistry;
	readonly #options: ResolvedOptions;
	readonly #writer: RunWriter;
	readonly #queue = new RunQueue<Execution>();
	// Makes the ids of runs created here: the registry's own kind when it has one (see `newRunId`).
	readonly #newId: NewRunId;

	// Every run not yet done: active, draining (terminal but still executing) or with writes outstanding.
	readonly #runs: ActiveRuns;
	// Runs QUEUED / RUNNING (not terminal) in this manager; `#queued + #running` is the active count.
	#queued = 0;
	#running = 0;
	// Whether per-module counts are needed (a finite `maxQueued`, or per-module limits): when not,
	// the two maps below stay empty and cost nothing per run.
	readonly #tracksModules: boolean;
	// QUEUED runs per module, for an exact `maxQueued` check.
	readonly #queuedByModule = new Map<string, number>();
	// Task functions executing, globally and per module: the slots in use. A draining run keeps its slot.
	#executing = 0;
	readonly #executingByModule = new Map<string, number>();
	#draining = 0;
	#completed = 0;
	#failed = 0;
	#cancelled = 0;
	// FIFO order of started runs.
	#seq = 0;
	#drainScheduled = false;
	// flush and shutdown waits; checked on every change of a run while any exists.
	readonly #waiters = new Set<Waiter>();
	// waitAll calls; told of every run that is done.
	readonly #allWaiters = new Set<AllWaiter>();
	// The last moduleId found valid: most runs of a host share a few modules, so the check is skipped for them.
	#validModuleId: string | undefined;
	// Set when shutdown begins, before any of its work: from then on no task is accepted.
	#closing = false;
	#shutdown: Promise<ShutdownReport> | undefined;
	// Sweeps, reconciles, the owner lease and the bus subscription.
	readonly #housekeeping: Housekeeping;
	// Cancels runs owned elsewhere and tells their owner in one registry call, when the registry and the bus can.
	readonly #cancelAndPublish: CancelAndPublish | undefined;

	constructor(registry: RunRegistry, options?: BackgroundTaskManagerOptions) {
		super();
		assertRegistry(registry);
		this.#registry = registry;
		const newId = (registry as Partial<Record<typeof newRunId, NewRunId>>)[newRunId];
		this.#newId = typeof newId === 'function' ? newId.bind(registry) : generateRunId;
		this.#runs = new ActiveRuns(registry);
		this.#options = resolveOptions(options);
		this.#tracksModules = this.#options.maxQueued !== Number.POSITIVE_INFINITY || this.#options.concurrencyByModule.size > 0;
		if (this.#options.ownerLease !== undefined) {
			for (const method of ['heartbeat', 'releaseOwner', 'reapOrphans'] as const) {
				if (typeof registry[method] !== 'function') {
					throw new ValidationError(`registry.${method}`, 'a function (ownerLease needs a registry with leases)', registry[method]);
				}
			}
		}

		this.#writer = new RunWriter(registry, {
			onStored: (execution) => {
				if (execution.deferredEvent && isTerminalStatus(execution.stored!)) this.#emitDeferred(execution);
				if (!execution.gated) return;
				if (execution.isTerminal) this.#openGate(execution, false);
				else if (execution.stored === 'running') this.#openGate(execution, true);
			},
			onWritten: (execution) => this.#onWritten(execution),
			onConflict: (execution, stored, ours) => this.#onConflict(execution, stored, ours),
			onRefused: (error, execution) => this.#onRefused(error, execution),
			onWriteError: (error, execution) => {
				this.#report(error, execution.detached ? 'The registry refused a write of this run; its writes stop' : 'A registry write failed; it will be retried');
				// The registry is in trouble: run the task rather than wait for it. A cancel made
				// elsewhere meanwhile still surfaces through the compare-and-set of a later write.
				this.#openGate(execution, true);
			},
		});

		this.#cancelAndPublish = cancelInOneTrip(registry, this.#options.bus);
		this.#housekeeping = new Housekeeping(registry, this.#options, {
			isClosing: () => this.#closing,
			reconcilableRunIds: () => {
				const runIds: string[] = [];
				for (const execution of this.#runs.values()) {
					if (!execution.isTerminal && execution.stored !== undefined && !execution.detached) runIds.push(execution.runId);
				}
				return runIds;
			},
			holds: (runId) => this.#runs.has(runId),
			adoptStoredStates: (runIds) => this.#adoptStoredStates(runIds),
			// A cancel published by any instance: acts on it when this manager runs the run. Duplicates
			// and replays find the run terminal (or unknown) and change nothing.
			onCancelCommand: (command) => {
				const execution = this.#runs.get(command.runId);
				if (execution !== undefined) this.#cancel(execution, command.reason);
			},
			report: (error, message) => this.#report(error, message),
		});
	}

	/**
	 * Starts a run of `task` and returns its id at once. The run is QUEUED until a slot is free,
	 * then RUNNING; the task function is never called inside this call.
	 *
	 * `run` is either the description of a new run, or a whole QUEUED run that the caller already
	 * added to the registry (which is then updated, not added again). `task` is a function, or a
	 * promise that is already running: a promise is tracked as RUNNING at once, takes no slot and
	 * cannot be aborted.
	 *
	 * @throws {ShutdownError} after `shutdown()` was called.
	 * @throws {RunExistsError} when a run with this id is active in this manager.
	 * @throws {QueueFullError} when `maxQueued` runs are already waiting.
	 * @throws {ValidationError} for a missing `moduleId`, a bad id, priority or timeout, or a task that is neither a function nor a promise.
	 */
	startTask<P = unknown, R = unknown>(
		run: StartTaskInput<P> | StartTaskRun<P>,
		task: TaskFunction<P, R> | PromiseLike<R>,
	): string {
		if (this.#closing) throw new ShutdownError();
		if (typeof run !== 'object' || run === null) throw new ValidationError('run', 'an object', run);
		const isFunction = typeof task === 'function';
		if (!isFunction && !isThenable(task)) {
			throw new ValidationError('task', 'a function or a promise', task);
		}

		const adopted = isWholeRun(run);
		const view = adopted ? this.#adoptRun(run) : this.#createRun(run);
		const timeoutMs = run.timeoutMs ?? this.#options.defaultTimeoutMs;
		if (run.timeoutMs !== undefined) assertTimeout('run.timeoutMs', run.timeoutMs);
		const chosenId = adopted || run.runId !== undefined;
		// A generated id (96 or 120 random bits) is new by construction.
		if (chosenId && this.#runs.has(view.runId)) throw new RunExistsError(view.runId);
		if (isFunction && this.#isQueueFull(view.moduleId)) throw new QueueFullError(this.#options.maxQueued);

		const execution = new Execution(view, task as TaskFunction | PromiseLike<unknown>, this.#seq++, timeoutMs, adopted, chosenId, this.#runs.owner);
		this.#runs.add(execution);
		this.#queued++;
		this.#countQueued(execution.moduleId, 1);
		if (isFunction) {
			this.#queue.push(execution);
			this.#scheduleDrain();
		}

		// Enqueued after the drain was scheduled, so that a run that gets a slot at once is added
		// as RUNNING in one write. An adopted record is in the registry already: its first write
		// is its start (or its cancel).
		if (!adopted) this.#writer.enqueue(execution, { status: 'queued' });
		this.#runs.settle(execution);

		this.#emit('queued', view);
		// A promise is running already: it takes no slot and has no function to call.
		if (!isFunction && !execution.isTerminal) this.#begin(execution, Date.now());
		return view.runId;
	}

	/**
	 * Cancels a run. A queued run becomes CANCELLED and its function is never called; a running
	 * one is recorded CANCELLED at once and its signal aborts with a `CancelledError` carrying
	 * `reason` — whatever it returns or throws afterwards is discarded. A run this manager does
	 * not execute is cancelled in the registry with a compare-and-set.
	 *
	 * @returns true when this call cancelled the run; false when it is unknown or already ended.
	 * @throws {RegistryError} when the run is not executed here and the registry cannot be reached.
	 */
	async cancelTask(runId: string, reason?: string): Promise<boolean> {
		if (typeof runId !== 'string') throw new ValidationError('runId', 'a string', runId);
		if (reason !== undefined && typeof reason !== 'string') throw new ValidationError('reason', 'a string', reason);
		const execution = this.#runs.get(runId);
		if (execution !== undefined) return this.#cancel(execution, reason);
		return this.#cancelStored(runId, reason);
	}

	/**
	 * Cancels every queued or running run of `itemId`: those this manager executes, and those
	 * that the registry holds as active.
	 *
	 * @returns how many runs this call cancelled.
	 * @throws {RegistryError} when the registry cannot be reached (the runs executed here are cancelled all the same).
	 */
	async cancelItemTasks(itemId: string, reason?: string): Promise<number> {
		if (typeof itemId !== 'string') throw new ValidationError('itemId', 'a string', itemId);
		if (reason !== undefined && typeof reason !== 'string') throw new ValidationError('reason', 'a string', reason);
		let count = 0;
		for (const execution of [...this.#runs.values()]) {
			if (execution.itemId === itemId && this.#cancel(execution, reason)) count++;
		}

		let cursor: string | undefined;
		do {
			let page: RunPage;
			try {
				page = await this.#registry.listRuns({ itemId, status: ['queued', 'running'], limit: 100, ...(cursor === undefined ? {} : { cursor }) });
			} catch (error) {
				// The local runs are cancelled already; the caller learns that the rest could not be reached.
				throw new RegistryError('listRuns', undefined, error);
			}

			for (const run of page.runs) {
				if (!this.#runs.has(run.runId) && (await this.#cancelStored(run.runId, reason))) count++;
			}

			cursor = page.nextCursor;
		} while (cursor !== undefined);

		return count;
	}

	/**
	 * Resolves when every task started before this call has settled — cancelled tasks still
	 * unwinding included — and every registry write for them is done. With `timeoutMs` it
	 * always resolves, and `pending` names what was left.
	 */
	async waitAll(options: { readonly timeoutMs?: number } = {}): Promise<WaitAllReport> {
		const { timeoutMs } = options;
		if (timeoutMs !== undefined) assertTimeout('timeoutMs', timeoutMs);
		if (this.#runs.size === 0) return { settled: true, pending: [] };
		const before = this.#seq;
		await new Promise<void>((resolve) => {
			let timer: NodeJS.Timeout | undefined;
			const waiter: AllWaiter = {
				before,
				pending: this.#runs.size,
				resolve: () => {
					if (timer !== undefined) clearTimeout(timer);
					this.#allWaiters.delete(waiter);
					resolve();
				},
			};
			this.#allWaiters.add(waiter);
			if (timeoutMs !== undefined) timer = setTimeout(waiter.resolve, timeoutMs);
		});
		const pending: string[] = [];
		for (const execution of this.#runs.values()) if (execution.seq < before) pending.push(execution.runId);
		return { settled: pending.length === 0, pending };
	}

	/** Resolves when the registry writes outstanding at the time of the call are done. */
	async flush(): Promise<void> {
		await this.#waitFor(this.#runs.values(), (execution) => !execution.isWriting, undefined);
	}

	/**
	 * Stops the manager: refuses new tasks, cancels queued runs, lets running ones finish for
	 * `graceMs`, cancels the rest (reason 'shutdown') and gives them `abortGraceMs` to unwind, then
	 * writes what is left to the registry until that deadline. Returns within about
	 * `graceMs + abortGraceMs`. Calling it again returns the same report.
	 */
	shutdown(options: ShutdownOptions = {}): Promise<ShutdownReport> {
		if (this.#shutdown === undefined) {
			const graceMs = options.graceMs ?? 10_000;
			const abortGraceMs = options.abortGraceMs ?? 1000;
			assertDelay('graceMs', graceMs);
			assertDelay('abortGraceMs', abortGraceMs);
			this.#closing = true;
			this.#shutdown = this.#runShutdown(graceMs, abortGraceMs);
		}

		return this.#shutdown;
	}

	/** How many runs are queued or running in this manager. */
	getActiveTaskCount(): number {
		return this.#queued + this.#running;
	}

	/** The ids of the runs queued or running in this manager. */
	getActiveTaskIds(): string[] {
		const ids: string[] = [];
		for (const execution of this.#runs.values()) {
			if (!execution.isTerminal) ids.push(execution.runId);
		}

		return ids;
	}

	/** Whether the run is queued or running in this manager. */
	isTaskActive(runId: string): boolean {
		const execution = this.#runs.get(runId);
		return execution !== undefined && !execution.isTerminal;
	}

	getStats(): ManagerStats {
		return {
			queued: this.#queued,
			running: this.#running,
			draining: this.#draining,
			completed: this.#completed,
			failed: this.#failed,
			cancelled: this.#cancelled,
			pendingWrites: this.#writer.size,
		};
	}

	/** The run: this manager's own view while it holds the run, else what the registry holds. */
	async getRun(runId: string): Promise<Run | undefined> {
		const execution = this.#runs.get(runId);
		if (execution !== undefined) return { ...execution.view };
		return this.#registry.getRun(runId);
	}

	/** Lists runs from the registry (runs whose first write is still pending are not there yet). */
	async listRuns(query?: RunQuery): Promise<RunPage> {
		return this.#registry.listRuns(query);
	}

	/**
	 * Resolves with the run once it is terminal and that state is written. Runs executed
	 * elsewhere are polled in the registry.
	 *
	 * @throws {RunNotFoundError} when the run is unknown.
	 * @throws {TimeoutError} when `timeoutMs` passes first.
	 */
	async waitForRun(runId: string, options: { readonly timeoutMs?: number } = {}): Promise<Run> {
		if (options.timeoutMs !== undefined) assertTimeout('timeoutMs', options.timeoutMs);
		const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
		const execution = this.#runs.get(runId);
		if (execution !== undefined) {
			if (execution.isTerminal && !execution.isWriting) return { ...execution.view };
			return withTimeout(
				new Promise<Run>((resolve) => {
					(execution.waiters ??= []).push(resolve);
				}),
				options.timeoutMs,
				() => new TimeoutError(`Run "${runId}" did not end within ${options.timeoutMs} ms`, options.timeoutMs!),
			);
		}

		let delay = 50;
		for (;;) {
			const run = await this.#registry.getRun(runId);
			if (run === undefined) throw new RunNotFoundError(runId);
			if (isTerminalStatus(run.status)) return run;
			const local = this.#runs.get(runId);
			if (local !== undefined) return this.waitForRun(runId, deadline === undefined ? {} : { timeoutMs: Math.max(1, deadline - Date.now()) });
			if (deadline !== undefined && Date.now() + delay > deadline) {
				throw new TimeoutError(`Run "${runId}" did not end within ${options.timeoutMs} ms`, options.timeoutMs!);
			}

			await sleep(delay);
			delay = Math.min(delay * 2, 1000);
		}
	}

	#createRun(input: StartTaskInput<unknown>): Run {
		// A generated id is valid by construction: only the caller's is checked.
		const runId = input.runId ?? this.#newId();
		if (input.runId !== undefined && !isValidId(runId)) throw new ValidationError('run.runId', 'a string of 1 to 256 printable characters', runId);
		if (this.#validModuleId === undefined || input.moduleId !== this.#validModuleId) {
			if (!isValidId(input.moduleId)) throw new ValidationError('run.moduleId', 'a non-empty string of up to 256 printable characters', input.moduleId);
			this.#validModuleId = input.moduleId;
		}
		if (input.priority !== undefined && !isRunPriority(input.priority)) {
			throw new ValidationError('run.priority', "one of 'critical', 'high', 'normal', 'low'", input.priority);
		}

		if (input.itemId !== undefined && !isValidId(input.itemId)) throw new ValidationError('run.itemId', 'a string of 1 to 256 printable characters', input.itemId);
		if (input.moduleName !== undefined && typeof input.moduleName !== 'string') throw new ValidationError('run.moduleName', 'a string', input.moduleName);
		if (input.metadata !== undefined && !isPlainObject(input.metadata)) throw new ValidationError('run.metadata', 'a plain object', input.metadata);

		const now = Date.now();
		const run: Mutable<Run> = {
			runId,
			moduleId: input.moduleId,
			status: 'queued',
			priority: input.priority ?? 'normal',
			parameters: 'parameters' in input ? input.parameters : NO_PARAMETERS,
			createdAt: now,
			updatedAt: now,
		};
		if (input.moduleName !== undefined) run.moduleName = input.moduleName;
		if (input.itemId !== undefined) run.itemId = input.itemId;
		// The order of changedView's fields, so that every view of a run has one shape.
		if (this.#options.instanceId !== undefined) run.ownerId = this.#options.instanceId;
		if (input.metadata !== undefined) run.metadata = input.metadata;
		return run;
	}

	#adoptRun(run: StartTaskRun<unknown>): Run {
		if (!isValidId(run.runId)) throw new ValidationError('run.runId', 'a string of 1 to 256 printable characters', run.runId);
		if (!isValidId(run.moduleId)) throw new ValidationError('run.moduleId', 'a non-empty string of up to 256 printable characters', run.moduleId);
		if (run.status !== 'queued') throw new ValidationError('run.status', "'queued' (only a queued run can be started)", run.status);
		if (!isRunPriority(run.priority)) throw new ValidationError('run.priority', "one of 'critical', 'high', 'normal', 'low'", run.priority);
		const { timeoutMs: _timeoutMs, ...view } = run;
		return this.#options.instanceId === undefined ? view : { ...view, ownerId: this.#options.instanceId };
	}

	// Whether one more run of `moduleId` would leave more than `maxQueued` runs waiting. Runs that
	// the next drain will start (free slots, globally and in their module) are not waiting.
	#isQueueFull(moduleId: string): boolean {
		const { maxQueued, concurrency, concurrencyByModule } = this.#options;
		if (maxQueued === Number.POSITIVE_INFINITY) return false;
		let startable = 0;
		let counted = false;
		const count = (module: string, queued: number): void => {
			const limit = concurrencyByModule.get(module) ?? Number.POSITIVE_INFINITY;
			startable += Math.min(queued, Math.max(0, limit - (this.#executingByModule.get(module) ?? 0)));
		};

		for (const [module, queued] of this.#queuedByModule) {
			const extra = module === moduleId ? 1 : 0;
			counted ||= extra === 1;
			count(module, queued + extra);
		}

		if (!counted) count(moduleId, 1);
		startable = Math.min(startable, Math.max(0, concurrency - this.#executing));
		return this.#queued + 1 - startable > maxQueued;
	}

	#countQueued(moduleId: string, delta: 1 | -1): void {
		if (!this.#tracksModules) return;
		const queued = (this.#queuedByModule.get(moduleId) ?? 0) + delta;
		if (queued === 0) this.#queuedByModule.delete(moduleId);
		else this.#queuedByModule.set(moduleId, queued);
	}

	#scheduleDrain(): void {
		if (this.#drainScheduled) return;
		this.#drainScheduled = true;
		// A microtask, so that the task function is never called inside startTask.
		queueMicrotask(() => {
			this.#drainScheduled = false;
			this.#drain();
		});
	}

	// Starts queued runs while slots are free. `now`, when given, is the time it is (a run just
	// ended then, freeing a slot): the first run starts at it, without asking the clock again.
	#drain(now?: number): void {
		const { concurrency } = this.#options;
		while (this.#executing < concurrency && !this.#closing) {
			const execution = this.#queue.take(this.#hasModuleSlot);
			if (execution === undefined) return;
			this.#begin(execution, now ?? Date.now());
			// The next one starts after this one's function ran: later.
			now = undefined;
		}
	}

	// A field, so that the queue gets the same function on every drain.
	readonly #hasModuleSlot = (moduleId: string): boolean => {
		const limit = this.#options.concurrencyByModule.get(moduleId);
		return limit === undefined || (this.#executingByModule.get(moduleId) ?? 0) < limit;
	};

	// QUEUED → RUNNING at `now`, then calls the task function (or follows the promise).
	#begin(execution: Execution, now: number): void {
		this.#queued--;
		this.#countQueued(execution.moduleId, -1);
		this.#running++;
		const patch: RunPatch = { status: 'running', startedAt: now };
		if (this.#options.instanceId !== undefined) patch.ownerId = this.#options.instanceId;
		execution.view = changedView(execution.view, patch, now);
		this.#emit('started', execution.view);
		this.#writer.enqueue(execution, patch);

		if (execution.timeoutMs !== undefined) {
			// Not unref'd: a run's own timer keeps the process alive until it fires or the run ends.
			// Armed in the run's async context, so that the abort it fires is heard there too.
			execution.timeoutTimer = execution.runInAsyncScope(setTimeout, undefined, () => this.#timeOut(execution), execution.timeoutMs);
		}

		const task = execution.task!;
		if (typeof task !== 'function') {
			execution.task = undefined;
			Promise.resolve(task).then(
				(value) => this.#finish(execution, 'completed', value),
				(error: unknown) => this.#finish(execution, 'failed', toErrorInfo(error)),
			);
			return;
		}

		this.#takeSlot(execution);
		// A run that others can see QUEUED in the registry may be cancelled there: its function is
		// called only once the compare-and-set queued → running has landed (see #onStored). A run
		// whose id the caller chose may find the id taken: its function waits for the add.
		if (execution.stored === 'queued' || (execution.chosenId && execution.stored === undefined)) {
			execution.gated = true;
			return;
		}

		this.#invoke(execution);
	}

	// Calls the task function of a run that holds its slot.
	#invoke(execution: Execution): void {
		const task = execution.task as TaskFunction;
		execution.task = undefined;
		let result: unknown;
		try {
			// In the async context of its startTask call, not in the one of whatever freed the slot.
			result = execution.runInAsyncScope(task, undefined, new RunContext(execution, this.#reportProgress));
		} catch (error) {
			this.#settle(execution, 'failed', error);
			return;
		}

		if (isThenable(result)) {
			Promise.resolve(result).then(
				(value) => this.#settle(execution, 'completed', value),
				(error: unknown) => this.#settle(execution, 'failed', error),
			);
		} else {
			this.#settle(execution, 'completed', result);
		}
	}

	#takeSlot(execution: Execution): void {
		execution.executing = true;
		this.#executing++;
		if (this.#tracksModules) this.#executingByModule.set(execution.moduleId, (this.#executingByModule.get(execution.moduleId) ?? 0) + 1);
	}

	// The task function settled: its slot is free, and its outcome counts unless the run already ended.
	// The run it frees the slot for starts when this one ended: one clock reading serves both.
	#settle(execution: Execution, status: 'completed' | 'failed', outcome: unknown): void {
		const now = Date.now();
		this.#freeSlot(execution);
		if (execution.isTerminal) {
			this.#afterChange(execution);
		} else {
			this.#finish(execution, status, status === 'completed' ? outcome : toErrorInfo(outcome), now);
		}

		this.#drain(now);
	}

	#freeSlot(execution: Execution): void {
		execution.executing = false;
		this.#executing--;
		if (this.#tracksModules) {
			const left = this.#executingByModule.get(execution.moduleId)! - 1;
			if (left === 0) this.#executingByModule.delete(execution.moduleId);
			else this.#executingByModule.set(execution.moduleId, left);
		}
		if (execution.isTerminal) this.#draining--;
	}

	// Settles the start gate of a run: calls its function, or frees its slot when it will never be called.
	#openGate(execution: Execution, call: boolean): void {
		if (!execution.gated) return;
		execution.gated = false;
		if (call && !execution.isTerminal) {
			this.#invoke(execution);
			return;
		}

		execution.task = undefined;
		this.#freeSlot(execution);
		this.#afterChange(execution);
		this.#drain();
	}

	#timeOut(execution: Execution): void {
		execution.timeoutTimer = undefined;
		if (execution.isTerminal) return;
		const error = withoutStack(() => new TimeoutError(`Run "${execution.runId}" timed out after ${execution.timeoutMs} ms`, execution.timeoutMs!));
		this.#abort(execution, error);
		this.#finish(execution, 'failed', ownErrorInfo(error));
	}

	// Returns true when this call cancelled the run.
	#cancel(execution: Execution, reason: string | undefined): boolean {
		if (execution.isTerminal) return false;
		if (execution.isWaiting()) {
			// Its function was never called, so no abort reason can ever be seen: the cancel is recorded
			// without making one (an Error captures a stack trace; a shutdown with a backlog of 100,000
			// runs spent most of its seconds on them).
			this.#finish(execution, 'cancelled', cancelledInfo(execution.runId, reason));
			return true;
		}

		const error = withoutStack(() => new CancelledError(execution.runId, reason));
		this.#abort(execution, error);
		this.#finish(execution, 'cancelled', ownErrorInfo(error));
		return true;
	}

	async #cancelStored(runId: string, reason: string | undefined): Promise<boolean> {
		const patch: RunPatch = { status: 'cancelled', completedAt: Date.now(), error: cancelledInfo(runId, reason) };
		const options = { ifStatus: ['queued', 'running'] } as const;
		const { bus, instanceId } = this.#options;
		const command: { type: 'cancel'; runId: string; reason?: string; origin?: string } = { type: 'cancel', runId };
		if (reason !== undefined) command.reason = reason;
		if (instanceId !== undefined) command.origin = instanceId;

		let cancelled: Run | undefined;
		let published = false;
		try {
			if (this.#cancelAndPublish === undefined) {
				cancelled = await this.#registry.updateRun(runId, patch, options);
			} else {
				({ run: cancelled, published } = await this.#cancelAndPublish(runId, patch, options, command));
			}
		} catch (error) {
			throw new RegistryError('updateRun', runId, error);
		}

		if (cancelled === undefined) return false;
		this.#cancelled++;
		this.#emit('cancelled', cancelled);
		// The registry now says CANCELLED, which is what counts; the bus only tells the owner sooner.
		if (bus !== undefined && !published) {
			try {
				await bus.publish(command);
			} catch (error) {
				this.#report(asRunledgerError(error, 'ERR_BUS'), 'Could not publish a cancel; the owner will see it on its next write or reconcile');
			}
		}

		return true;
	}

	/**
	 * Marks the queued and running runs of owners whose lease expired FAILED ('OwnerLostError'),
	 * through the registry's `reapOrphans`. Runs periodically when `ownerLease` is set.
	 *
	 * @returns the ids of the runs reaped.
	 */
	reapOrphans(): Promise<string[]> {
		return this.#housekeeping.reapOrphans();
	}

	// Reads the stored state of these runs and lets it win where it has ended them.
	async #adoptStoredStates(runIds: string[]): Promise<void> {
		if (runIds.length === 0) return;
		const registry = this.#registry;
		const runs = registry.getRuns === undefined
			? await Promise.all(runIds.map((runId) => registry.getRun(runId)))
			: await registry.getRuns(runIds);
		for (const [index, runId] of runIds.entries()) {
			const execution = this.#runs.get(runId);
			const stored = runs[index];
			if (execution === undefined || execution.isTerminal || execution.detached) continue;
			if (stored === undefined) {
				// Lost from the registry (deleted, expired, data loss): write it again, whole.
				execution.stored = undefined;
				execution.adopted = false;
				this.#writer.enqueue(execution, {});
			} else if (isTerminalStatus(stored.status)) {
				execution.detached = true;
				execution.pending = undefined;
				this.#onConflict(execution, stored, isSameRun(stored, execution.view));
				this.#afterChange(execution);
			}
		}
	}

	#abort(execution: Execution, reason: RunledgerError): void {
		const { controller } = execution;
		if (controller !== undefined) controller.abort(reason);
		// No signal handed out yet: the task gets one already aborted if it asks (the first reason wins, as with a controller).
		else execution.abortReason ??= reason;
	}

	// A field, so that every run's context can share it without a closure of its own.
	readonly #reportProgress = (execution: Execution, percent: number, message: string | undefined): void => {
		if (typeof percent !== 'number' || Number.isNaN(percent)) {
			throw new ValidationError('percent', 'a number from 0 to 100', percent);
		}

		if (message !== undefined && typeof message !== 'string') throw new ValidationError('message', 'a string', message);
		if (execution.view.status !== 'running') return;
		const clamped = Math.min(100, Math.max(0, percent));
		execution.progress = message === undefined ? { percent: clamped } : { percent: clamped, message };

		const throttle = this.#options.progressThrottleMs;
		if (execution.progressTimer !== undefined) return;
		const wait = execution.lastProgressAt + throttle - Date.now();
		if (throttle === 0 || wait <= 0) {
			this.#flushProgress(execution);
		} else {
			// The terminal write carries the last progress anyway: this timer need not hold the process.
			execution.progressTimer = setTimeout(() => this.#flushProgress(execution), wait);
			execution.progressTimer.unref();
		}
	};

	#flushProgress(execution: Execution): void {
		if (execution.progressTimer !== undefined) clearTimeout(execution.progressTimer);
		execution.progressTimer = undefined;
		const { progress } = execution;
		if (progress === undefined || execution.isTerminal) return;
		execution.progress = undefined;
		const now = Date.now();
		execution.lastProgressAt = now;
		execution.view = changedView(execution.view, { progress }, now);
		this.#emit('progress', execution.view);
		this.#writer.enqueue(execution, { progress });
	}

	// Moves an active run to its terminal state at `now`, once. `outcome` is the result, or for a
	// failure or a cancel the error to record (a thrown value goes through toErrorInfo first).
	#finish(execution: Execution, status: 'completed' | 'failed' | 'cancelled', outcome: unknown, now = Date.now()): void {
		if (execution.isTerminal) return;
		if (execution.abortedAtShutdown !== undefined) {
			// Aborted by the shutdown: whatever the task did once it stopped, the run was cancelled.
			status = 'cancelled';
			outcome = ownErrorInfo(execution.abortedAtShutdown);
		}

		this.#flushProgress(execution);
		if (execution.timeoutTimer !== undefined) clearTimeout(execution.timeoutTimer);
		execution.timeoutTimer = undefined;
		execution.task = undefined;

		const patch: RunPatch = { status, completedAt: now };
		if (status === 'completed') {
			if (outcome !== undefined) patch.result = outcome;
		} else {
			patch.error = outcome as RunErrorInfo;
		}

		this.#applyTerminal(execution, changedView(execution.view, patch, now), true);
		this.#writer.enqueue(execution, patch);
		this.#afterChange(execution);
	}

	// Records a terminal view locally: counters, events. Writing is the caller's business; `written`
	// says that this view is about to be written, so that its event may wait for the registry's answer.
	#applyTerminal(execution: Execution, view: Run, written: boolean): void {
		if (execution.view.status === 'queued') {
			this.#queued--;
			this.#countQueued(execution.moduleId, -1);
		} else {
			this.#running--;
		}

		if (execution.executing) this.#draining++;
		execution.view = view;
		this.#countTerminal(view.status, 1);
		// While this manager's lease may have lapsed, its runs may be reaped before their terminal
		// write lands: the event waits for the registry's answer, so that listeners hear the stored
		// state. A view read from the registry is that answer, and one never written has none to wait for.
		if (written && this.#housekeeping.leaseInDoubt()) execution.deferredEvent = true;
		else this.#emit(view.status as 'completed' | 'failed' | 'cancelled', view);
	}

	#countTerminal(status: RunStatus, delta: 1 | -1): void {
		if (status === 'completed') this.#completed += delta;
		else if (status === 'failed') this.#failed += delta;
		else if (status === 'cancelled') this.#cancelled += delta;
	}

	// The terminal event held back while the lease was in doubt, now that the registry has answered.
	#emitDeferred(execution: Execution): void {
		execution.deferredEvent = false;
		this.#emit(execution.view.status as 'completed' | 'failed' | 'cancelled', execution.view);
	}

	#onWritten(execution: Execution): void {
		// The writes ended without the registry confirming a terminal state (given up, refused): the run's own view is all there is.
		if (execution.deferredEvent && execution.isTerminal) this.#emitDeferred(execution);
		if (execution.gated && execution.detached) this.#openGate(execution, false);
		if (execution.isTerminal) this.#resolveRunWaiters(execution);
		this.#afterChange(execution);
	}

	// The registry holds a state this manager did not write: it wins.
	#onConflict(execution: Execution, stored: Run | undefined, ours: boolean): void {
		// A run still waiting at its start gate never gets its function called.
		if (execution.gated) {
			execution.gated = false;
			execution.task = undefined;
			this.#freeSlot(execution);
			this.#drain();
		}

		if (stored !== undefined && ours && isTerminalStatus(stored.status)) {
			if (!execution.isTerminal) {
				const { runId } = execution;
				this.#abort(
					execution,
					withoutStack(() => stored.status === 'cancelled' ? CancelledError.fromStored(runId, stored.error) : new RunledgerError(`Run "${runId}" was ended elsewhere (${stored.status})`, { code: 'ERR_ENDED_ELSEWHERE' })),
				);
				this.#clearTimers(execution);
				this.#applyTerminal(execution, stored, false);
			} else {
				if (stored.status !== execution.view.status) {
					// Ended otherwise in the registry before this manager's terminal write landed: the counts follow the registry.
					this.#countTerminal(execution.view.status, -1);
					this.#countTerminal(stored.status, 1);
				}

				execution.view = stored;
				if (execution.deferredEvent) this.#emitDeferred(execution);
			}

			this.#options.logger.info({ runId: execution.runId, status: stored.status }, 'Run was ended elsewhere; the registry state stands');
			return;
		}

		// The registry holds another run under this id, or none at all.
		const error = stored === undefined
			? new RunNotFoundError(execution.runId)
			: new RunExistsError(execution.runId);
		this.#report(error, stored === undefined ? 'The run vanished from the registry; its writes stop' : 'The registry holds another run with this id; this run is failed and not written');
		if (!execution.isTerminal) {
			this.#abort(execution, error);
			this.#clearTimers(execution);
			const now = Date.now();
			this.#applyTerminal(execution, changedView(execution.view, { status: 'failed', error: ownErrorInfo(error), completedAt: now }, now), false);
		}
	}

	// The registry refused a write as invalid. What it can refuse of a run the manager made is the
	// task's result (a BigInt, a cycle, a function…, for a registry that stores JSON; or one over its
	// maxResultBytes): the run is then FAILED with a ResultNotStorableError (or the registry's
	// ResultTooLargeError) instead, and written again. The `completed` event
	// was emitted already; the view, the counts and the registry say FAILED from here on.
	#onRefused(error: RegistryError, execution: Execution): boolean {
		this.#report(error, 'The registry refused a write of this run');
		const { view } = execution;
		if (view.status !== 'completed' || !('result' in view)) return false;
		const { result: _result, ...rest } = view;
		const { cause } = error;
		const message = cause instanceof Error ? cause.message : String(cause);
		execution.view = {
			...rest,
			status: 'failed',
			// Over the registry's maxResultBytes: that error as it is; anything else, the result cannot be stored at all.
			error: cause instanceof Error && cause.name === 'ResultTooLargeError'
				? toErrorInfo(cause)
				: { name: 'ResultNotStorableError', message: `The registry cannot store the result of run "${view.runId}": ${message}` },
			updatedAt: Date.now(),
		};
		this.#completed--;
		this.#failed++;
		return true;
	}

	#clearTimers(execution: Execution): void {
		if (execution.timeoutTimer !== undefined) clearTimeout(execution.timeoutTimer);
		if (execution.progressTimer !== undefined) clearTimeout(execution.progressTimer);
		execution.timeoutTimer = undefined;
		execution.progressTimer = undefined;
	}

	#resolveRunWaiters(execution: Execution): void {
		const { waiters } = execution;
		if (waiters === undefined) return;
		execution.waiters = undefined;
		for (const resolve of waiters) resolve({ ...execution.view });
	}

	// Called after anything changed for a run: forgets finished runs and wakes waiters.
	#afterChange(execution: Execution): void {
		if (!execution.forgotten && execution.isDone) {
			this.#runs.delete(execution);
			// The terminal write may have been given up (conflict, shutdown): waiters still get the final view.
			this.#resolveRunWaiters(execution);
			for (const waiter of this.#allWaiters) {
				if (execution.seq < waiter.before && --waiter.pending === 0) waiter.resolve();
			}
		}

		if (this.#waiters.size === 0) return;
		for (const waiter of this.#waiters) {
			if (waiter.pending.has(execution) && waiter.isDone(execution)) {
				waiter.pending.delete(execution);
				if (waiter.pending.size === 0) waiter.resolve();
			}
		}
	}

	// Waits until `isDone` holds for every one of `executions`; resolves with the ids of those it does not hold for at the timeout.
	#waitFor(executions: Iterable<Execution>, isDone: (execution: Execution) => boolean, timeoutMs: number | undefined): Promise<string[]> {
		const pending = new Set<Execution>();
		for (const execution of executions) if (!isDone(execution)) pending.add(execution);
		if (pending.size === 0) return Promise.resolve([]);

		return new Promise((resolve) => {
			let timer: NodeJS.Timeout | undefined;
			const waiter: Waiter = {
				pending,
				isDone,
				resolve: () => {
					if (timer !== undefined) clearTimeout(timer);
					this.#waiters.delete(waiter);
					resolve([...pending].map((execution) => execution.runId));
				},
			};
			this.#waiters.add(waiter);
			if (timeoutMs !== undefined) timer = setTimeout(waiter.resolve, timeoutMs);
		});
	}

	async #runShutdown(graceMs: number, abortGraceMs: number): Promise<ShutdownReport> {
		const deadline = Date.now() + graceMs + abortGraceMs;
		const active = [...this.#runs.values()].filter((execution) => !execution.isTerminal);
		const cancelled: string[] = [];
		const timedOut: string[] = [];

		// Queued runs never start once shutdown has begun.
		for (const execution of active) {
			if (execution.view.status === 'queued' && this.#cancel(execution, SHUTDOWN_REASON)) cancelled.push(execution.runId);
		}

		await this.#waitFor(active, (execution) => execution.isTerminal, graceMs);

		// Still running: their signals abort, and what they do within abortGraceMs decides how they
		// are recorded — CANCELLED once the task stopped, FAILED (ShutdownTimeoutError) if it never did.
		const aborted: Execution[] = [];
		for (const execution of active) {
			if (execution.isTerminal) continue;
			if (execution.gated) {
				// Its function was never called: nothing to wait for.
				if (this.#cancel(execution, SHUTDOWN_REASON)) cancelled.push(execution.runId);
				continue;
			}

			const reason = withoutStack(() => new CancelledError(execution.runId, SHUTDOWN_REASON));
			execution.abortedAtShutdown = reason;
			this.#abort(execution, reason);
			aborted.push(execution);
		}

		if (aborted.length > 0) await this.#waitFor(aborted, (execution) => execution.isTerminal, Math.max(1, deadline - Date.now()));
		for (const execution of aborted) {
			if (execution.isTerminal) {
				if (execution.view.status === 'cancelled') cancelled.push(execution.runId);
				continue;
			}

			execution.abortedAtShutdown = undefined;
			this.#finish(execution, 'failed', ownErrorInfo(new ShutdownTimeoutError(execution.runId, abortGraceMs)));
			timedOut.push(execution.runId);
		}

		const unsettled = await this.#waitFor(this.#runs.values(), (execution) => !execution.executing, Math.max(1, deadline - Date.now()));
		// The states decided at the deadline still get a short moment to be written.
		await this.#waitFor(this.#runs.values(), (execution) => !execution.isWriting, Math.max(1, deadline + SHUTDOWN_FLUSH_MS - Date.now()));
		// From here on, retries stop so that nothing of the manager keeps the process alive.
		const unflushed = this.#writer.close(this.#runs.values());
		for (const execution of this.#runs.values()) if (execution.deferredEvent) this.#emitDeferred(execution);
		for (const execution of this.#runs.values()) this.#openGate(execution, false);

		// The bus and the registry may be unreachable: leaving the one and releasing the lease on the
		// other get what is left of a short grace, then are let go.
		await settleWithin(
			this.#housekeeping.stop(),
			Math.max(50, Math.min(1000, deadline - Date.now())),
			(error) => this.#report(asRunledgerError(error, 'ERR_REGISTRY'), 'Leaving the bus or releasing the lease failed'),
		);
		const ended = new Set([...cancelled, ...timedOut]);
		const finished = active.filter((execution) => !ended.has(execution.runId)).map((execution) => execution.runId);
		return { finished, cancelled, timedOut, unsettled, unflushed };
	}

	// Listeners are the host's code: a throwing one must not break the manager's bookkeeping.
	#emit(event: 'queued' | 'started' | 'progress' | 'completed' | 'failed' | 'cancelled', run: Run): void {
		try {
			this.emit(event, run);
		} catch (error) {
			this.#report(new RunledgerError(`A "${event}" listener threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error, code: 'ERR_LISTENER' }), 'An event listener threw');
		}
	}

	#report(error: RunledgerError, message: string): void {
		const runId = (error as { runId?: unknown }).runId;
		this.#options.logger.error({ err: error, ...(typeof runId === 'string' ? { runId } : {}) }, message);
		try {
			this.emit('error', error);
		} catch (listenerError) {
			this.#options.logger.error({ err: listenerError }, 'An "error" listener threw');
		}
	}
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function isThenable(value: unknown): value is PromiseLike<unknown> {
	return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

function isWholeRun(run: StartTaskInput<unknown> | StartTaskRun<unknown>): run is StartTaskRun<unknown> {
	return typeof (run as Run).status === 'string' && typeof (run as Run).createdAt === 'number';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
	if (typeof value !== 'object' || value === null) return false;
	const prototype = Object.getPrototypeOf(value) as unknown;
	return prototype === Object.prototype || prototype === null;
}

function assertRegistry(registry: unknown): asserts registry is RunRegistry {
	const methods = ['addRun', 'getRun', 'updateRun', 'listRuns', 'deleteRun', 'cleanupOldRuns'] as const;
	if (typeof registry !== 'object' || registry === null) throw new ValidationError('registry', 'a RunRegistry', registry);
	for (const method of methods) {
		if (typeof (registry as Record<string, unknown>)[method] !== 'function') {
			throw new ValidationError(`registry.${method}`, 'a function', (registry as Record<string, unknown>)[method]);
		}
	}
}

function assertDelay(field: string, value: unknown): void {
	if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 2_147_483_647)) {
		throw new ValidationError(field, 'a number of milliseconds from 0 to 2147483647', value);
	}
}

// Waits for `promise` at most `ms`; a rejection goes to `onError`. Never rejects.
async function settleWithin(promise: Promise<unknown>, ms: number, onError: (error: unknown) => void): Promise<void> {
	let timer: NodeJS.Timeout | undefined;
	await Promise.race([
		promise.catch(onError),
		new Promise<void>((resolve) => {
			timer = setTimeout(resolve, ms);
		}),
	]);
	clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, onTimeout: () => Error): Promise<T> {
	if (timeoutMs === undefined) return promise;
	return new Promise<T>((resolve, reject) => {
		const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
		promise.then(
			(value) => {
				clearTimeout(timer);
				resolve(value);
			},
			(error: unknown) => {
				clearTimeout(timer);
				reject(error);
			},
		);
	});
}

/**
 * Every error runledger throws or records is a {@link RunledgerError}. Subclasses are few
 * and each names one situation a caller may want to handle differently.
 */
import type { RunStatus } from './run.js';

/** The base of every runledger error. `code` is stable across releases; match on it or on the class. */
export class RunledgerError extends Error {
	override name: string = 'RunledgerError';
	readonly code: string;

	constructor(message: string, options?: { cause?: unknown; code?: string }) {
		super(message, options?.cause === undefined ? undefined : { cause: options.cause });
		this.code = options?.code ?? 'ERR_RUNLEDGER';
	}
}

/** An argument or option is not what it must be. `field` names it; the message says expected vs. actual. */
export class ValidationError extends RunledgerError {
	override name = 'ValidationError' as const;
	readonly field: string;

	constructor(field: string, expected: string, actual: unknown) {
		super(`Expected \`${field}\` to be ${expected}, got ${describe(actual)}`, { code: 'ERR_VALIDATION' });
		this.field = field;
	}
}

/** A run with this id already exists: in the registry, or active in this manager. */
export class RunExistsError extends RunledgerError {
	override name = 'RunExistsError' as const;
	readonly runId: string;

	constructor(runId: string) {
		super(`A run with id "${runId}" already exists`, { code: 'ERR_RUN_EXISTS' });
		this.runId = runId;
	}
}

/** No run with this id is known. */
export class RunNotFoundError extends RunledgerError {
	override name = 'RunNotFoundError' as const;
	readonly runId: string;

	constructor(runId: string) {
		super(`No run with id "${runId}"`, { code: 'ERR_RUN_NOT_FOUND' });
		this.runId = runId;
	}
}

/** A status change the lifecycle does not allow, such as completed → running. Nothing was changed. */
export class IllegalTransitionError extends RunledgerError {
	override name = 'IllegalTransitionError' as const;
	readonly runId: string;
	readonly from: RunStatus;
	readonly to: RunStatus;

	constructor(runId: string, from: RunStatus, to: RunStatus) {
		super(
			from === to
				? `Run "${runId}" is ${from} and can no longer change`
				: `Run "${runId}" cannot go from ${from} to ${to}`,
			{ code: 'ERR_ILLEGAL_TRANSITION' },
		);
		this.runId = runId;
		this.from = from;
		this.to = to;
	}
}

/** The manager is shutting down (or has shut down) and takes no new tasks. */
export class ShutdownError extends RunledgerError {
	override name = 'ShutdownError' as const;

	constructor() {
		super('The task manager is shutting down and accepts no new tasks', { code: 'ERR_SHUTDOWN' });
	}
}

/** The queue of waiting runs is at `maxQueued`. */
export class QueueFullError extends RunledgerError {
	override name = 'QueueFullError' as const;
	readonly maxQueued: number;

	constructor(maxQueued: number) {
		super(`The queue is full: ${maxQueued} runs are already waiting (maxQueued)`, { code: 'ERR_QUEUE_FULL' });
		this.maxQueued = maxQueued;
	}
}

/** A run, or a wait for one, took longer than allowed. A run's signal aborts with this as its reason. */
export class TimeoutError extends RunledgerError {
	override name = 'TimeoutError' as const;
	readonly timeoutMs: number;

	constructor(message: string, timeoutMs: number) {
		super(message, { code: 'ERR_TIMEOUT' });
		this.timeoutMs = timeoutMs;
	}
}

/**
 * `make()` with V8's stack capture off. For the errors a run's signal aborts with (a cancel, a
 * timeout, a shutdown, a run ended elsewhere): their stack could only point into runledger (a
 * timer, the bus, the manager), and capturing it was the largest single cost of a cancel in the
 * process that runs the task. `stack` is then just the `name: message` line. Internal.
 */
export function withoutStack<E extends Error>(make: () => E): E {
	const limit = Error.stackTraceLimit;
	try {
		Error.stackTraceLimit = 0;
	} catch {
		// Frozen intrinsics (`--frozen-intrinsics`, SES): the error gets its stack as usual.
		return make();
	}
	try {
		return make();
	} finally {
		Error.stackTraceLimit = limit;
	}
}

/** The message of a {@link CancelledError}. Internal: the manager records a queued run's cancel with it without making the error. */
export function cancelledMessage(runId: string, reason: string | undefined): string {
	return reason === undefined ? `Run "${runId}" was cancelled` : `Run "${runId}" was cancelled: ${reason}`;
}

/** A run was cancelled. A running task's signal aborts with this as its reason. */
export class CancelledError extends RunledgerError {
	override name = 'CancelledError' as const;
	readonly runId: string;
	/** Why it was cancelled, as given to `cancelTask`; `'shutdown'` when the manager shut down. */
	readonly reason: string | undefined;

	constructor(runId: string, reason?: string) {
		super(cancelledMessage(runId, reason), { code: 'ERR_CANCELLED' });
		this.runId = runId;
		this.reason = reason;
	}

	/** Rebuilds the error from the `{ name, message }` a registry stored for a cancelled run, reason included. */
	static fromStored(runId: string, stored: { readonly message: string } | undefined): CancelledError {
		const prefix = `Run "${runId}" was cancelled: `;
		const message = stored?.message;
		return new CancelledError(runId, message?.startsWith(prefix) === true ? message.slice(prefix.length) : undefined);
	}
}

/**
 * A task's result is larger than the registry's `maxResultBytes` (measured as UTF-8 bytes of its
 * JSON text). The registry refuses it and stores nothing of it; the run ends FAILED with this error.
 */
export class ResultTooLargeError extends RunledgerError {
	override name = 'ResultTooLargeError' as const;
	readonly bytes: number;
	readonly maxBytes: number;

	constructor(bytes: number, maxBytes: number) {
		super(`The result is ${bytes} bytes of JSON, over the limit of ${maxBytes} bytes (maxResultBytes)`, { code: 'ERR_RESULT_TOO_LARGE' });
		this.bytes = bytes;
		this.maxBytes = maxBytes;
	}
}

/**
 * A run's task was still executing when `shutdown()` gave up on it: it ignored its aborted signal
 * for `abortGraceMs`. The run is recorded FAILED with this error; the task itself may still be running.
 */
export class ShutdownTimeoutError extends RunledgerError {
	override name = 'ShutdownTimeoutError' as const;
	readonly runId: string;

	constructor(runId: string, abortGraceMs: number) {
		super(`Run "${runId}" did not stop within ${abortGraceMs} ms of being aborted at shutdown`, { code: 'ERR_SHUTDOWN_TIMEOUT' });
		this.runId = runId;
	}
}

/** A registry operation failed; `cause` holds what the registry threw. */
export class RegistryError extends RunledgerError {
	override name = 'RegistryError' as const;
	readonly runId: string | undefined;
	readonly operation: string;

	constructor(operation: string, runId: string | undefined, cause: unknown) {
		super(
			`Registry ${operation}${runId === undefined ? '' : ` of run "${runId}"`} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
			{ cause, code: 'ERR_REGISTRY' },
		);
		this.operation = operation;
		this.runId = runId;
	}
}

/** Whether `error` is any runledger error. */
export function isRunledgerError(error: unknown): error is RunledgerError {
	return error instanceof RunledgerError;
}

/** Whether `error` is the reason a run was cancelled. */
export function isCancelledError(error: unknown): error is CancelledError {
	return error instanceof CancelledError;
}

/** Whether `error` is a runledger timeout. */
export function isTimeoutError(error: unknown): error is TimeoutError {
	return error instanceof TimeoutError;
}

/** `error` as a RunledgerError: itself when it is one, else wrapped (as `cause`) under `code`. Internal. */
export function asRunledgerError(error: unknown, code: string): RunledgerError {
	if (error instanceof RunledgerError) return error;
	return new RunledgerError(error instanceof Error ? error.message : String(error), { cause: error, code });
}

function describe(value: unknown): string {
	if (value === null) return 'null';
	if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
	if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
	if (Array.isArray(value)) return 'an array';
	return typeof value === 'object' ? 'an object' : typeof value;
}

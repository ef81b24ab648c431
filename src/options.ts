/**
 * Options of the {@link BackgroundTaskManager}, validated once in its constructor.
 */
import type { CancellationBus } from './bus.js';
import { ValidationError } from './errors.js';
import { isValidId } from './run-validation.js';

/** A pino-compatible logger. Every method takes a context object first and an optional message. */
export interface Logger {
	debug(object: Record<string, unknown>, message?: string): void;
	info(object: Record<string, unknown>, message?: string): void;
	warn(object: Record<string, unknown>, message?: string): void;
	error(object: Record<string, unknown>, message?: string): void;
}

/** How terminal runs are swept out of the registry. */
export interface RetentionOptions {
	/** Terminal runs older than this (since they ended) are removed. */
	readonly maxAgeMs: number;

	/**
	 * How often the sweep runs. Its timer is unref'd: it never keeps the process alive.
	 * @default Math.min(maxAgeMs, 60_000)
	 */
	readonly sweepIntervalMs?: number;
}

/** Owner leases: how a crashed instance's runs are found and failed by the others. */
export interface OwnerLeaseOptions {
	/** How long a lease lives without renewal, on the registry's clock. Runs of an owner whose lease expired are reaped. */
	readonly ttlMs: number;

	/**
	 * How often the lease is renewed. Its timer is unref'd.
	 * @default ttlMs / 3
	 */
	readonly heartbeatIntervalMs?: number;

	/**
	 * How often this manager reaps the runs of owners whose lease expired. Its timer is unref'd.
	 * @default ttlMs
	 */
	readonly reapIntervalMs?: number;
}

export interface BackgroundTaskManagerOptions {
	/**
	 * How many task functions may execute at once. A cancelled or timed-out task whose function
	 * has not settled yet keeps its slot until it does.
	 * @default Infinity
	 */
	readonly concurrency?: number;

	/**
	 * Limits per `moduleId`, applied on top of `concurrency`, e.g. `{ video: 2, image: 3 }`.
	 * A run waits QUEUED until both its module's limit and the global one allow it.
	 * @default {}
	 */
	readonly concurrencyByModule?: Readonly<Record<string, number>>;

	/**
	 * How many runs may wait QUEUED; `startTask` throws a `QueueFullError` beyond it.
	 * @default Infinity
	 */
	readonly maxQueued?: number;

	/**
	 * Timeout of a run that sets none itself, counted from the moment it starts RUNNING.
	 * On expiry its signal aborts with a `TimeoutError` and the run is FAILED.
	 * @default undefined (no timeout)
	 */
	readonly defaultTimeoutMs?: number;

	/**
	 * Progress reports of one run are written and emitted at most once per this interval;
	 * the last value is always written before the run's terminal state. 0 writes every report.
	 * @default 100
	 */
	readonly progressThrottleMs?: number;

	/** This manager's id, recorded as `ownerId` on the runs it executes. */
	readonly instanceId?: string;

	/**
	 * Periodic removal of old terminal runs from the registry.
	 * @default undefined (runs are kept until the registry evicts them)
	 */
	readonly retention?: RetentionOptions;

	/**
	 * Where internal failures (such as a registry write that failed) are logged, besides the `error` event.
	 * @default a silent logger
	 */
	readonly logger?: Logger;

	/**
	 * Carries cancels between instances that share a registry: `cancelTask` on any instance
	 * writes CANCELLED, then publishes here so that the owner aborts the run at once. The bus is
	 * the host's: the manager unsubscribes at shutdown but never closes it.
	 * @default undefined (cancels of runs owned elsewhere reach them on their next write or reconcile)
	 */
	readonly bus?: CancellationBus;

	/**
	 * How often the manager compares its running runs with the registry (one batch read), so that
	 * a cancel or reap whose bus message was lost still aborts the run. 0 turns it off. Its timer is unref'd.
	 * @default 5000
	 */
	readonly reconcileIntervalMs?: number;

	/**
	 * Keeps a lease for `instanceId` in the registry and reaps the runs of crashed owners. Needs
	 * `instanceId` and a registry with `heartbeat`, `releaseOwner` and `reapOrphans`.
	 * @default undefined (no leases)
	 */
	readonly ownerLease?: OwnerLeaseOptions;
}

/** The options after validation, with defaults applied. */
export interface ResolvedOptions {
	readonly concurrency: number;
	readonly concurrencyByModule: ReadonlyMap<string, number>;
	readonly maxQueued: number;
	readonly defaultTimeoutMs: number | undefined;
	readonly progressThrottleMs: number;
	readonly instanceId: string | undefined;
	readonly retention: Required<RetentionOptions> | undefined;
	readonly logger: Logger;
	readonly bus: CancellationBus | undefined;
	readonly reconcileIntervalMs: number;
	readonly ownerLease: Required<OwnerLeaseOptions> | undefined;
}

/** setTimeout fires at once for delays above this, so longer timeouts are refused. */
export const MAX_TIMER_MS = 2_147_483_647;

const noop = (): void => {};
const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export function resolveOptions(options: BackgroundTaskManagerOptions = {}): ResolvedOptions {
	if (typeof options !== 'object' || options === null) {
		throw new ValidationError('options', 'an object', options);
	}

	const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
	assertLimit('concurrency', concurrency);

	const concurrencyByModule = new Map<string, number>();
	if (options.concurrencyByModule !== undefined) {
		if (typeof options.concurrencyByModule !== 'object' || options.concurrencyByModule === null) {
			throw new ValidationError('concurrencyByModule', 'an object of module id → limit', options.concurrencyByModule);
		}

		for (const [moduleId, limit] of Object.entries(options.concurrencyByModule)) {
			assertLimit(`concurrencyByModule.${moduleId}`, limit);
			concurrencyByModule.set(moduleId, limit);
		}
	}

	const maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
	if (!(maxQueued === Number.POSITIVE_INFINITY || (Number.isInteger(maxQueued) && maxQueued >= 0))) {
		throw new ValidationError('maxQueued', 'an integer ≥ 0 or Infinity', maxQueued);
	}

	if (options.defaultTimeoutMs !== undefined) {
		assertTimeout('defaultTimeoutMs', options.defaultTimeoutMs);
	}

	const progressThrottleMs = options.progressThrottleMs ?? 100;
	if (!(Number.isFinite(progressThrottleMs) && progressThrottleMs >= 0 && progressThrottleMs <= MAX_TIMER_MS)) {
		throw new ValidationError('progressThrottleMs', `a number from 0 to ${MAX_TIMER_MS}`, progressThrottleMs);
	}

	if (options.instanceId !== undefined && !isValidId(options.instanceId)) {
		throw new ValidationError('instanceId', 'a string of 1 to 256 printable characters', options.instanceId);
	}

	let retention: Required<RetentionOptions> | undefined;
	if (options.retention !== undefined) {
		const { maxAgeMs, sweepIntervalMs } = options.retention;
		if (!(Number.isFinite(maxAgeMs) && maxAgeMs >= 0)) {
			throw new ValidationError('retention.maxAgeMs', 'a finite number ≥ 0', maxAgeMs);
		}

		const interval = sweepIntervalMs ?? Math.min(Math.max(maxAgeMs, 1000), 60_000);
		assertTimeout('retention.sweepIntervalMs', interval);
		retention = { maxAgeMs, sweepIntervalMs: interval };
	}

	const logger = options.logger ?? silentLogger;
	for (const level of ['debug', 'info', 'warn', 'error'] as const) {
		if (typeof logger[level] !== 'function') {
			throw new ValidationError(`logger.${level}`, 'a function', logger[level]);
		}
	}

	const { bus } = options;
	if (bus !== undefined && (typeof bus !== 'object' || bus === null || typeof bus.publish !== 'function' || typeof bus.subscribe !== 'function')) {
		throw new ValidationError('bus', 'a CancellationBus (with publish and subscribe)', bus);
	}

	const reconcileIntervalMs = options.reconcileIntervalMs ?? 5000;
	if (reconcileIntervalMs !== 0) assertTimeout('reconcileIntervalMs', reconcileIntervalMs);

	let ownerLease: Required<OwnerLeaseOptions> | undefined;
	if (options.ownerLease !== undefined) {
		const { ttlMs, heartbeatIntervalMs, reapIntervalMs } = options.ownerLease;
		assertTimeout('ownerLease.ttlMs', ttlMs);
		const heartbeat = heartbeatIntervalMs ?? Math.max(1, Math.floor(ttlMs / 3));
		assertTimeout('ownerLease.heartbeatIntervalMs', heartbeat);
		if (heartbeat >= ttlMs) {
			throw new ValidationError('ownerLease.heartbeatIntervalMs', `less than ownerLease.ttlMs (${ttlMs})`, heartbeat);
		}

		const reap = reapIntervalMs ?? ttlMs;
		assertTimeout('ownerLease.reapIntervalMs', reap);
		if (options.instanceId === undefined) {
			throw new ValidationError('instanceId', 'set when ownerLease is given (leases are kept per instance)', undefined);
		}

		ownerLease = { ttlMs, heartbeatIntervalMs: heartbeat, reapIntervalMs: reap };
	}

	return {
		concurrency,
		concurrencyByModule,
		maxQueued,
		defaultTimeoutMs: options.defaultTimeoutMs,
		progressThrottleMs,
		instanceId: options.instanceId,
		retention,
		logger,
		bus,
		reconcileIntervalMs,
		ownerLease,
	};
}

export function assertTimeout(field: string, value: unknown): asserts value is number {
	if (!(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_MS)) {
		throw new ValidationError(field, `a number of milliseconds from 1 to ${MAX_TIMER_MS}`, value);
	}
}

function assertLimit(field: string, value: unknown): void {
	if (!(value === Number.POSITIVE_INFINITY || (typeof value === 'number' && Number.isInteger(value) && value >= 1))) {
		throw new ValidationError(field, 'an integer ≥ 1 or Infinity', value);
	}
}

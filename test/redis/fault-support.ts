/**
 * Helpers of the Redis fault tests: a redis-server of the test's own (never the shared one, as
 * these tests break it; see test/support/redis-server.ts), the
 * ioredis settings that survive an outage, process-level traps for unhandled rejections and
 * uncaught exceptions, and timer accounting.
 */
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Redis, type RedisOptions } from 'ioredis';

export { RedisServer, freePort, type RedisServerOptions } from '../support/redis-server.js';


/**
 * The client settings these tests use, and what a user should use:
 * - `maxRetriesPerRequest: 1`: a command waiting for a connection fails after two failed
 *   reconnection attempts (about 150 ms to 1 s) instead of 20, so the manager gets the failure,
 *   reports it and retries with its own backoff;
 * - `retryStrategy`: always a number, so the client never gives up reconnecting (returning
 *   anything else ends the client for good), capped at 500 ms so it is back soon after Redis is;
 * - `enableOfflineQueue: true` (ioredis' default), so that a command issued while the client is
 *   (re)connecting waits for the connection rather than failing at once: no spurious failure at
 *   start-up or on a short blip, and still bounded by `maxRetriesPerRequest`.
 */
export const FAULT_TOLERANT_CLIENT_OPTIONS = {
	maxRetriesPerRequest: 1,
	retryStrategy: (attempt: number): number => Math.min(attempt * 50, 500),
	enableOfflineQueue: true,
} as const satisfies RedisOptions;

/** A client of `url` with {@link FAULT_TOLERANT_CLIENT_OPTIONS}; its `error` events go to `errors` (no "Unhandled error event" noise). */
export function faultTolerantClient(url: string, errors: unknown[]): Redis {
	const client = new Redis(url, { ...FAULT_TOLERANT_CLIENT_OPTIONS });
	client.on('error', (error: unknown) => errors.push(error));
	return client;
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What reached the process-level handlers: each is a failure of the test. */
export interface ProcessTraps {
	readonly caught: Array<{ readonly kind: 'unhandledRejection' | 'uncaughtException'; readonly error: unknown }>;
	/** Removes the listeners. */
	remove(): void;
}

/** Listens for `unhandledRejection` and `uncaughtException` on the process until `remove()`. */
export function trapProcessErrors(): ProcessTraps {
	const caught: Array<{ kind: 'unhandledRejection' | 'uncaughtException'; error: unknown }> = [];
	const onRejection = (error: unknown): void => {
		caught.push({ kind: 'unhandledRejection', error });
	};
	const onException = (error: unknown): void => {
		caught.push({ kind: 'uncaughtException', error });
	};
	process.on('unhandledRejection', onRejection);
	process.on('uncaughtException', onException);
	return {
		caught,
		remove() {
			process.off('unhandledRejection', onRejection);
			process.off('uncaughtException', onException);
		},
	};
}

/** How many ref'd `Timeout`s the process holds (unref'd timers are not listed by Node). */
export function activeTimeouts(): number {
	return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

/** A timer created through the global timer functions while tracking, and not yet cleared or fired. */
export interface LiveTimer {
	readonly kind: 'timeout' | 'interval';
	readonly ms: number | undefined;
	/** Where it was created: the first frame inside the repository's src/ or ioredis. */
	readonly origin: string;
}

export interface TimerTracker {
	/** The timers created since tracking began by runledger's src/ or by ioredis that are still live, ref'd or not. */
	live(): LiveTimer[];
	/** Puts the original global timer functions back. */
	restore(): void;
}

const SRC_DIR = fileURLToPath(new URL('../../src/', import.meta.url));
const IOREDIS_DIR = `${sep}node_modules${sep}ioredis${sep}`;

/**
 * Wraps the global `setTimeout` / `setInterval` / `clearTimeout` / `clearInterval` to see every
 * timer runledger's src/ and ioredis create until `restore()`, unref'd ones included (which
 * `process.getActiveResourcesInfo()` does not list).
 */
export function trackTimers(): TimerTracker {
	const original = {
		setTimeout: globalThis.setTimeout,
		setInterval: globalThis.setInterval,
		clearTimeout: globalThis.clearTimeout,
		clearInterval: globalThis.clearInterval,
	};
	const live = new Map<object, LiveTimer>();
	const originOf = (): string | undefined => {
		const frames = (new Error().stack ?? '').split('\n').slice(2);
		return frames.find((frame) => frame.includes(SRC_DIR) || frame.includes(IOREDIS_DIR))?.trim();
	};
	const track = (timer: NodeJS.Timeout, kind: 'timeout' | 'interval', ms: number | undefined): void => {
		const origin = originOf();
		if (origin !== undefined) live.set(timer, { kind, ms, origin });
	};
	const forget = (timer: unknown): void => {
		if (typeof timer === 'object' && timer !== null) live.delete(timer);
	};

	const wrappedSetTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
		const timer: NodeJS.Timeout = original.setTimeout(
			(...callbackArgs: unknown[]) => {
				live.delete(timer);
				callback(...callbackArgs);
			},
			ms,
			...args,
		);
		track(timer, 'timeout', ms);
		return timer;
	};
	const wrappedSetInterval = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
		const timer = original.setInterval(callback, ms, ...args);
		track(timer, 'interval', ms);
		return timer;
	};
	const wrappedClear = (timer: string | number | NodeJS.Timeout | undefined): void => {
		forget(timer);
		original.clearTimeout(timer);
	};

	globalThis.setTimeout = Object.assign(wrappedSetTimeout, { __promisify__: original.setTimeout.__promisify__ }) as unknown as typeof setTimeout;
	globalThis.setInterval = wrappedSetInterval as unknown as typeof setInterval;
	globalThis.clearTimeout = wrappedClear as typeof clearTimeout;
	globalThis.clearInterval = wrappedClear as typeof clearInterval;
	return {
		live: () => [...live.values()],
		restore() {
			Object.assign(globalThis, original);
		},
	};
}

/** Functions run in reverse order of registration by `run()`, each even if an earlier one threw. */
export class Cleanup {
	readonly #steps: Array<() => unknown> = [];

	defer(step: () => unknown): void {
		this.#steps.push(step);
	}

	async run(): Promise<void> {
		const errors: unknown[] = [];
		for (const step of this.#steps.splice(0).reverse()) {
			try {
				await step();
			} catch (error) {
				errors.push(error);
			}
		}
		if (errors.length > 0) throw new AggregateError(errors, 'Cleanup failed');
	}
}

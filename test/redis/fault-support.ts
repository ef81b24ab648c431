/**
 * Helpers of test/redis/faults.test.ts: a redis-server of the test's own (never the shared one,
 * as these tests break it) that can be stopped, killed and started again on the same port, the
 * ioredis settings that survive an outage, process-level traps for unhandled rejections and
 * uncaught exceptions, and timer accounting.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Redis, type RedisOptions } from 'ioredis';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

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

/** A loopback port that was free a moment ago: bind 127.0.0.1:0, read the port, close. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const address = probe.address();
			probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('No port'))));
		});
	});
}

export interface RedisServerOptions {
	/** AOF persistence (`--appendonly yes` in a temporary `--dir`), so that data survives a restart. @default false */
	readonly aof?: boolean;
}

/**
 * A redis-server of one test, on a loopback port chosen once and kept across restarts. Started,
 * stopped (SIGTERM, or SIGKILL for a crash) and started again by pid. `destroy()` kills it and
 * removes its directory; it is also killed if the worker exits.
 */
export class RedisServer {
	readonly port: number;
	readonly url: string;
	readonly aof: boolean;
	readonly #dir: string;
	#child: ChildProcess | undefined;
	readonly #killOnExit = (): void => {
		if (this.#child?.pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
	};

	private constructor(port: number, dir: string, aof: boolean) {
		this.port = port;
		this.url = `redis://127.0.0.1:${port}`;
		this.aof = aof;
		this.#dir = dir;
		process.on('exit', this.#killOnExit);
	}

	/** A server on a free port, not started yet (for a test where Redis is unreachable at first). */
	static async create(options: RedisServerOptions = {}): Promise<RedisServer> {
		const dir = await mkdtemp(join(tmpdir(), 'runledger-faults-'));
		return new RedisServer(await freePort(), dir, options.aof ?? false);
	}

	/** A started server. A port found free can be taken before redis-server binds it: a few ports are tried. */
	static async started(options: RedisServerOptions = {}): Promise<RedisServer> {
		let lastError: unknown;
		for (let attempt = 0; attempt < 3; attempt++) {
			const server = await RedisServer.create(options);
			try {
				await server.start();
				return server;
			} catch (error) {
				lastError = error;
				await server.destroy();
			}
		}
		throw lastError;
	}

	get running(): boolean {
		return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
	}

	/** Spawns redis-server on `port` (with the data of `--dir` when AOF is on) and resolves once it answers PING. */
	async start(): Promise<void> {
		if (this.running) throw new Error(`redis-server on port ${this.port} is already running`);
		const child = spawn(
			'redis-server',
			[
				'--port', String(this.port),
				'--bind', '127.0.0.1',
				'--save', '',
				'--appendonly', this.aof ? 'yes' : 'no',
				'--dir', this.#dir,
				'--protected-mode', 'yes',
				'--maxmemory-policy', 'noeviction',
			],
			{ stdio: ['ignore', 'pipe', 'pipe'] },
		);
		this.#child = child;
		let output = '';
		const collect = (chunk: Buffer): void => {
			output = (output + chunk.toString()).slice(-4_000);
		};
		child.stdout?.on('data', collect);
		child.stderr?.on('data', collect);
		let exited = false;
		child.once('exit', () => (exited = true));
		child.once('error', (error) => {
			exited = true;
			output += String(error);
		});

		const deadline = Date.now() + START_TIMEOUT_MS;
		while (Date.now() < deadline) {
			if (exited) throw new Error(`redis-server exited at start on port ${this.port}:\n${output}`);
			if (await pings(this.port)) return;
			await sleep(20);
		}
		await this.stop('SIGKILL');
		throw new Error(`redis-server did not answer PING on port ${this.port} within ${START_TIMEOUT_MS} ms:\n${output}`);
	}

	/** Stops it by pid — SIGTERM (a clean shutdown: AOF flushed) or SIGKILL (a crash) — and resolves once it exited. */
	async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
		const child = this.#child;
		if (child === undefined || child.pid === undefined || !this.running) return;
		const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
		process.kill(child.pid, signal);
		const timer = setTimeout(() => {
			if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
		}, STOP_TIMEOUT_MS);
		await exited;
		clearTimeout(timer);
	}

	/** Freezes it (SIGSTOP): connections stay open and commands hang unanswered, as with a stalled server or a black-holed network. */
	pause(): void {
		if (this.#child?.pid === undefined || !this.running) throw new Error(`redis-server on port ${this.port} is not running`);
		process.kill(this.#child.pid, 'SIGSTOP');
	}

	/** Thaws it (SIGCONT). */
	resume(): void {
		if (this.#child?.pid !== undefined && this.running) process.kill(this.#child.pid, 'SIGCONT');
	}

	/** Kills it if it runs and removes its directory. */
	async destroy(): Promise<void> {
		await this.stop('SIGKILL');
		process.off('exit', this.#killOnExit);
		await rm(this.#dir, { recursive: true, force: true });
	}
}

// Whether a Redis on 127.0.0.1:port answers PING with PONG.
function pings(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = createConnection({ host: '127.0.0.1', port });
		let reply = '';
		const done = (ok: boolean): void => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(1_000, () => done(false));
		socket.once('error', () => done(false));
		socket.once('connect', () => socket.write('PING\r\n'));
		socket.on('data', (chunk) => {
			reply += chunk.toString();
			if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
		});
	});
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

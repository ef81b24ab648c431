/**
 * Redis trouble is survived: when Redis is unreachable or restarts mid-run, startTask still works,
 * tasks run, the manager's own view stays right, writes are retried, and once Redis is back every
 * run's final state lands. No unhandled rejection, no crash, and shutdown() returns within its
 * deadlines while Redis is down.
 *
 * These tests stop, kill and restart Redis, so none uses the shared test server: each starts a
 * redis-server of its own on a free loopback port (test/redis/fault-support.ts). Every test traps
 * `unhandledRejection` and `uncaughtException` on the process and fails on anything caught.
 * The ioredis settings are FAULT_TOLERANT_CLIENT_OPTIONS: maxRetriesPerRequest 1, a capped
 * retryStrategy that never gives up, and the offline queue on (ioredis' default).
 */
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
	BackgroundTaskManager,
	type BackgroundTaskManagerOptions,
	CancelledError,
	RegistryError,
	type Run,
	type RunledgerError,
} from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import { deferred } from '../support/deferred.js';
import {
	Cleanup,
	type ProcessTraps,
	RedisServer,
	activeTimeouts,
	faultTolerantClient,
	sleep,
	trackTimers,
	trapProcessErrors,
} from './fault-support.js';
import { eventually, redisUrl, uniquePrefix } from './support.js';

let traps: ProcessTraps;
let cleanup: Cleanup;

// Test-local state: one Redis, its clients, one manager.
interface Rig {
	readonly server: RedisServer;
	/** The manager's client. */
	readonly client: Redis;
	/** A separate client, to look at what Redis holds. */
	readonly observer: RedisRunRegistry;
	readonly observerClient: Redis;
	/** `error` events of the ioredis clients (connection refused and the like). */
	readonly clientErrors: unknown[];
	readonly prefix: string;
}

function rig(server: RedisServer): Rig {
	const clientErrors: unknown[] = [];
	const client = faultTolerantClient(server.url, clientErrors);
	const observerClient = faultTolerantClient(server.url, clientErrors);
	cleanup.defer(() => {
		client.disconnect();
		observerClient.disconnect();
	});
	const prefix = uniquePrefix();
	return { server, client, observerClient, observer: new RedisRunRegistry({ client: observerClient, prefix }), clientErrors, prefix };
}

function managerOf(
	{ client, prefix }: Rig,
	options: BackgroundTaskManagerOptions = {},
): { manager: BackgroundTaskManager; errors: RunledgerError[]; queued: Map<string, Run> } {
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), options);
	const errors: RunledgerError[] = [];
	const queued = new Map<string, Run>();
	manager.on('error', (error) => errors.push(error));
	manager.on('queued', (run) => queued.set(run.runId, run));
	cleanup.defer(() => manager.shutdown({ graceMs: 0, abortGraceMs: 100 }));
	return { manager, errors, queued };
}

/** `read` retried until it succeeds: right after a restart the observer may still be reconnecting. */
async function retrying<T>(read: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			return await read();
		} catch (error) {
			if (Date.now() > deadline) throw error;
			await sleep(25);
		}
	}
}

/** What Redis holds for `runIds`, in order, read through the observer (retried while it reconnects). */
function stored(rig: Rig, runIds: readonly string[]): Promise<Array<Run | undefined>> {
	return retrying(() => rig.observer.getRuns(runIds));
}

async function storedAll(rig: Rig, runIds: readonly string[], check: (run: Run | undefined, index: number) => boolean): Promise<boolean> {
	try {
		return (await rig.observer.getRuns(runIds)).every(check);
	} catch {
		return false;
	}
}

/** Every run under the prefix, whatever its status. */
async function allStored(rig: Rig): Promise<Run[]> {
	return (await retrying(() => rig.observer.listRuns({ limit: 10_000 }))).runs;
}

const registryErrors = (errors: readonly RunledgerError[]): RegistryError[] => errors.filter((error): error is RegistryError => error instanceof RegistryError);
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

function report(line: string): void {
	console.log(`[faults] ${line}`);
}

describe.skipIf(redisUrl === null)('Redis faults: each test on a redis-server of its own', () => {
	beforeEach(() => {
		traps = trapProcessErrors();
		cleanup = new Cleanup();
	});

	afterEach(async () => {
		try {
			await cleanup.run();
			// Rejections are reported as unhandled after the microtask queue drains: give late ones a turn.
			await sleep(50);
			expect(traps.caught).toEqual([]);
		} finally {
			traps.remove();
		}
	});

	it('1. Redis restart mid-run (AOF): 50 runs reporting progress, Redis down ~1 s while they complete → all 50 COMPLETED with results once it is back', async () => {
		const server = await RedisServer.started({ aof: true });
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		const { manager, errors } = managerOf(r, { instanceId: 'faults-restart', progressThrottleMs: 20 });

		const N = 50;
		const releases = Array.from({ length: N }, () => deferred());
		const lastPercent = Array.from({ length: N }, () => 0);
		const ids = releases.map((release, index) =>
			manager.startTask({ moduleId: 'render', itemId: `item-${index % 5}`, parameters: { index } }, async ({ reportProgress }) => {
				let percent = 0;
				while (!release.settled) {
					percent = Math.min(99, percent + 1);
					lastPercent[index] = percent;
					reportProgress(percent, `step ${percent}`);
					await Promise.race([release.promise, sleep(10)]);
				}
				return { index, percent };
			}),
		);
		await eventually('50 runs RUNNING with progress in Redis', () => storedAll(r, ids, (run) => run?.status === 'running' && run.progress !== undefined), 10_000);

		// Down while every task is still reporting progress; they complete while it is down.
		const downAt = Date.now();
		await server.stop('SIGTERM');
		releases.forEach((release, index) => setTimeout(() => release.resolve(), 20 + index * 8));
		await eventually('50 runs completed in the manager', () => manager.getStats().completed === N, 5_000);

		// The manager's own view is right although nothing could be written.
		expect(server.running).toBe(false);
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 0, draining: 0, completed: N, failed: 0, cancelled: 0, pendingWrites: N });
		expect(manager.getActiveTaskCount()).toBe(0);
		for (const [index, runId] of ids.entries()) {
			expect(await manager.getRun(runId)).toMatchObject({ status: 'completed', result: { index, percent: lastPercent[index] } });
		}
		const failedWrites = registryErrors(errors);
		expect(failedWrites.length).toBeGreaterThan(0);
		expect(errors.every((error) => error.code === 'ERR_REGISTRY')).toBe(true);

		await sleep(Math.max(0, downAt + 1_000 - Date.now()));
		const downMs = Date.now() - downAt;
		await server.start();
		const upAt = Date.now();
		const waited = await manager.waitAll({ timeoutMs: 20_000 });
		const landedMs = Date.now() - upAt;
		expect(waited).toEqual({ settled: true, pending: [] });
		expect(manager.getStats().pendingWrites).toBe(0);

		const runs = await stored(r, ids);
		for (const [index, run] of runs.entries()) {
			expect(run).toMatchObject({
				status: 'completed',
				moduleId: 'render',
				ownerId: 'faults-restart',
				parameters: { index },
				result: { index, percent: lastPercent[index] },
				progress: { percent: lastPercent[index], message: `step ${lastPercent[index]}` },
			});
			expect(run?.completedAt).toBeGreaterThanOrEqual(downAt);
		}
		const all = await allStored(r);
		expect(all.filter((run) => run.status === 'completed')).toHaveLength(N);
		expect(all).toHaveLength(N);
		report(
			`restart mid-run: ${N} runs, Redis down ${downMs} ms (SIGTERM, AOF, same port), ${failedWrites.length} RegistryError events, ` +
				`${r.clientErrors.length} ioredis error events, all ${N} COMPLETED in Redis ${landedMs} ms after it was back`,
		);
	});

	it('2a. Redis restarted empty (no persistence): the 30 runs still executing are written again whole and end COMPLETED; the 20 that had finished before are gone', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		// A short reconcile, so that the runs still executing are written again before their next write of their own.
		const { manager, errors, queued } = managerOf(r, { instanceId: 'faults-loss', reconcileIntervalMs: 200 });

		const early = Array.from({ length: 20 }, (_, index) => manager.startTask({ moduleId: 'early', parameters: { index } }, () => ({ phase: 'early', index })));
		expect(await manager.waitAll({ timeoutMs: 10_000 })).toEqual({ settled: true, pending: [] });
		expect((await stored(r, early)).every((run) => run?.status === 'completed')).toBe(true);

		const release = deferred();
		const late = Array.from({ length: 30 }, (_, index) =>
			manager.startTask({ moduleId: 'late', itemId: 'item-late', parameters: { index } }, async () => {
				await release.promise;
				return { phase: 'late', index };
			}),
		);
		await eventually('30 late runs RUNNING in Redis', () => storedAll(r, late, (run) => run?.status === 'running'), 10_000);

		// The data is lost: stopped and started again without persistence.
		await server.stop('SIGTERM');
		await server.start();
		const upAt = Date.now();
		// The reconcile finds them missing and writes each again, whole, still RUNNING.
		await eventually('the 30 late runs written again as RUNNING', () => storedAll(r, late, (run) => run?.status === 'running'), 10_000);
		const rewrittenMs = Date.now() - upAt;
		for (const [index, run] of (await stored(r, late)).entries()) {
			const view = queued.get(late[index] as string);
			expect(run).toMatchObject({ moduleId: 'late', itemId: 'item-late', ownerId: 'faults-loss', parameters: { index }, createdAt: view?.createdAt, priority: 'normal' });
			expect(run?.startedAt).toEqual(expect.any(Number));
		}

		release.resolve();
		expect(await manager.waitAll({ timeoutMs: 20_000 })).toEqual({ settled: true, pending: [] });
		const lateRuns = await stored(r, late);
		for (const [index, run] of lateRuns.entries()) {
			expect(run).toMatchObject({ status: 'completed', moduleId: 'late', itemId: 'item-late', parameters: { index }, result: { phase: 'late', index }, createdAt: queued.get(late[index] as string)?.createdAt });
		}
		// Runs that had ended before the loss are gone: no instance executes them any more, so nobody writes them again.
		expect(await stored(r, early)).toEqual(early.map(() => undefined));
		expect(sorted((await allStored(r)).map((run) => run.runId))).toEqual(sorted(late));
		// No run was given up as vanished.
		expect(errors.filter((error) => error.name === 'RunNotFoundError')).toEqual([]);
		expect(errors.every((error) => error.code === 'ERR_REGISTRY')).toBe(true);
		report(`restart empty: 30/30 runs still executing written again whole (RUNNING ${rewrittenMs} ms after the restart, by reconcile) and COMPLETED; 0/20 runs finished before the loss remain`);
	});

	it('2b. FLUSHALL mid-run (concurrency 5): 5 running and 5 queued runs are written again whole and end COMPLETED, each function called once; the 5 finished before are gone', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		// No reconcile: the runs are written again by their own next write.
		const { manager, errors, queued } = managerOf(r, { instanceId: 'faults-flush', concurrency: 5, reconcileIntervalMs: 0 });

		const release = deferred();
		const calls = new Map<number, number>();
		const ids = Array.from({ length: 15 }, (_, index) =>
			manager.startTask({ moduleId: 'flush', parameters: { index } }, async () => {
				calls.set(index, (calls.get(index) ?? 0) + 1);
				if (index >= 5 && index < 10) await release.promise;
				return { index };
			}),
		);
		const finished = ids.slice(0, 5);
		const running = ids.slice(5, 10);
		const waiting = ids.slice(10);
		await eventually(
			'5 COMPLETED, 5 RUNNING and 5 QUEUED in Redis',
			() => storedAll(r, ids, (run, index) => run?.status === (index < 5 ? 'completed' : index < 10 ? 'running' : 'queued')),
			10_000,
		);

		await r.observerClient.flushall();
		expect(await r.observerClient.dbsize()).toBe(0);
		release.resolve();
		expect(await manager.waitAll({ timeoutMs: 20_000 })).toEqual({ settled: true, pending: [] });

		for (const [index, run] of (await stored(r, [...running, ...waiting])).entries()) {
			const runId = [...running, ...waiting][index] as string;
			expect(run).toMatchObject({ status: 'completed', moduleId: 'flush', ownerId: 'faults-flush', parameters: { index: index + 5 }, result: { index: index + 5 }, createdAt: queued.get(runId)?.createdAt });
			expect(run?.startedAt).toEqual(expect.any(Number));
		}
		expect(await stored(r, finished)).toEqual(finished.map(() => undefined));
		expect(sorted((await allStored(r)).map((run) => run.runId))).toEqual(sorted([...running, ...waiting]));
		// Every function ran exactly once: the queued ones started after the flush, through a re-add rather than the lost QUEUED record.
		expect([...calls.entries()].sort(([a], [b]) => a - b)).toEqual(ids.map((_, index) => [index, 1]));
		expect(errors).toEqual([]);
		report('FLUSHALL mid-run: 10/10 runs still executing or queued written again whole and COMPLETED (15 functions called once each); 0/5 runs finished before the flush remain');
	});

	it('3. Redis unreachable at start: construct + 20 startTask work, 20 runs complete locally, then Redis starts → 20 COMPLETED land', async () => {
		const server = await RedisServer.create();
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		const startedAt = Date.now();
		const { manager, errors } = managerOf(r, { instanceId: 'faults-cold', bus: new RedisCancellationBus({ client: r.client, prefix: r.prefix }) });
		const completed: Run[] = [];
		manager.on('completed', (run) => completed.push(run));

		const ids = Array.from({ length: 20 }, (_, index) =>
			manager.startTask({ moduleId: 'cold', parameters: { index } }, async () => {
				await sleep(20);
				return { index };
			}),
		);
		expect(new Set(ids).size).toBe(20);
		await eventually('20 runs completed in the manager', () => completed.length === 20, 5_000);
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 0, completed: 20, failed: 0, pendingWrites: 20 });
		for (const [index, runId] of ids.entries()) {
			expect(await manager.getRun(runId)).toMatchObject({ status: 'completed', result: { index } });
		}
		await eventually('a RegistryError for a failed addRun', () => registryErrors(errors).some((error) => error.operation === 'addRun'), 5_000);
		expect(registryErrors(errors).every((error) => ids.includes(error.runId as string))).toBe(true);

		await sleep(300);
		const unreachableMs = Date.now() - startedAt;
		await server.start();
		const upAt = Date.now();
		expect(await manager.waitAll({ timeoutMs: 20_000 })).toEqual({ settled: true, pending: [] });
		const landedMs = Date.now() - upAt;
		for (const [index, run] of (await stored(r, ids)).entries()) {
			expect(run).toMatchObject({ status: 'completed', moduleId: 'cold', ownerId: 'faults-cold', parameters: { index }, result: { index } });
			expect(run?.startedAt).toEqual(expect.any(Number));
		}
		expect(await allStored(r)).toHaveLength(20);
		const other = errors.filter((error) => !(error instanceof RegistryError)).map((error) => `${error.code}: ${error.message}`);
		report(
			`unreachable at start: ${unreachableMs} ms without Redis, 20/20 runs completed locally, ${registryErrors(errors).length} RegistryError events, ` +
				`20 COMPLETED in Redis ${landedMs} ms after it started; other manager errors: ${JSON.stringify(other)}`,
		);
	});

	it('4. Redis down through shutdown({ graceMs: 300, abortGraceMs: 300 }): returns within 850 ms, lists the 10 unflushed runs, leaves no timers', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const timeoutsBefore = activeTimeouts();
		const timers = trackTimers();
		cleanup.defer(() => timers.restore());
		const r = rig(server);
		// Every housekeeping timer and every Redis call of shutdown: bus, lease, reconcile, retention.
		const { manager, errors } = managerOf(r, {
			instanceId: 'faults-shutdown',
			bus: new RedisCancellationBus({ client: r.client, prefix: r.prefix }),
			ownerLease: { ttlMs: 3_000 },
			retention: { maxAgeMs: 60_000, sweepIntervalMs: 1_000 },
			reconcileIntervalMs: 1_000,
		});

		// 4 end by themselves within the grace period; 6 end only when their signal aborts.
		const shutdownBegun = deferred();
		const aborted: unknown[] = [];
		const ids = Array.from({ length: 10 }, (_, index) =>
			manager.startTask({ moduleId: 'slow', parameters: { index } }, async ({ signal }) => {
				const abortion = new Promise<never>((_, reject) => {
					const onAbort = (): void => {
						aborted.push(signal.reason);
						reject(signal.reason as Error);
					};
					if (signal.aborted) onAbort();
					else signal.addEventListener('abort', onAbort, { once: true });
				});
				abortion.catch(() => {});
				if (index < 4) {
					await Promise.race([shutdownBegun.promise, abortion]);
					await Promise.race([sleep(100), abortion]);
					return { index };
				}
				return abortion;
			}),
		);
		await eventually('10 runs RUNNING in Redis', () => storedAll(r, ids, (run) => run?.status === 'running'), 10_000);

		await server.stop('SIGTERM');
		const began = performance.now();
		const shutdown = manager.shutdown({ graceMs: 300, abortGraceMs: 300 });
		shutdownBegun.resolve();
		const result = await shutdown;
		const elapsedMs = performance.now() - began;

		expect(elapsedMs).toBeLessThanOrEqual(300 + 300 + 250);
		expect(sorted(result.finished)).toEqual(sorted(ids.slice(0, 4)));
		expect(sorted(result.cancelled)).toEqual(sorted(ids.slice(4)));
		expect(result.unsettled).toEqual([]);
		expect(sorted(result.unflushed)).toEqual(sorted(ids));
		expect(aborted).toHaveLength(6);
		expect(aborted.every((reason) => reason instanceof CancelledError && reason.reason === 'shutdown')).toBe(true);
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 0, draining: 0, completed: 4, cancelled: 6, pendingWrites: 0 });
		expect(registryErrors(errors).length).toBeGreaterThan(0);

		// Nothing of the manager is left once shutdown() has returned: no timer of src/, ref'd or unref'd.
		const managerTimers = timers.live().filter((timer) => !timer.origin.includes('ioredis'));
		expect(managerTimers).toEqual([]);

		// The clients are the host's: it closes them after the shutdown.
		r.client.disconnect();
		r.observerClient.disconnect();
		const ioredisTimers = timers.live();
		timers.restore();
		// ioredis' disconnect() arms a 2 s destroy fallback per connection whose socket is already closed
		// (AbstractConnector.disconnect): the client's, the observer's and the bus subscriber's. Not the manager's.
		expect(ioredisTimers.every((timer) => timer.origin.includes('AbstractConnector') && timer.ms === 2_000)).toBe(true);
		const closedAt = Date.now();
		await eventually('the ref\'d Timeouts to be back to their count before the test', () => activeTimeouts() <= timeoutsBefore, 5_000);
		const timeoutsAfter = activeTimeouts();
		expect(timeoutsAfter).toBeLessThanOrEqual(timeoutsBefore);
		report(
			`shutdown with Redis down: returned in ${elapsedMs.toFixed(0)} ms (bound 850), finished 4, cancelled 6, unsettled 0, unflushed ${result.unflushed.length}/10; ` +
				`src/ timers live after it: ${managerTimers.length}; ref'd Timeouts before ${timeoutsBefore} / after ${timeoutsAfter} ` +
				`(${ioredisTimers.length} ioredis disconnect fallbacks of 2 s gone ${Date.now() - closedAt} ms after disconnect())`,
		);
	});

	it('5. cancel while Redis is down: cancelTask → true for a running and a queued run, the signal aborts, both CANCELLED land once Redis is back', async () => {
		const server = await RedisServer.started({ aof: true });
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		const { manager } = managerOf(r, { instanceId: 'faults-cancel', concurrency: 1 });

		let reason: unknown;
		let queuedCalled = false;
		const running = manager.startTask({ moduleId: 'cancel' }, ({ signal }) =>
			new Promise((_, reject) => {
				signal.addEventListener('abort', () => {
					reason = signal.reason;
					reject(signal.reason as Error);
				}, { once: true });
			}),
		);
		const waiting = manager.startTask({ moduleId: 'cancel' }, () => {
			queuedCalled = true;
		});
		await eventually('one run RUNNING and one QUEUED in Redis', () => storedAll(r, [running, waiting], (run, index) => run?.status === (index === 0 ? 'running' : 'queued')), 10_000);

		await server.stop('SIGTERM');
		const downAt = Date.now();
		// Local decisions: no Redis round trip is needed to cancel a run this manager executes.
		expect(await manager.cancelTask(waiting, 'no longer needed')).toBe(true);
		expect(await manager.cancelTask(running, 'user pressed stop')).toBe(true);
		const cancelMs = Date.now() - downAt;
		await eventually('the running task to see its signal abort', () => reason !== undefined, 2_000);
		expect(reason).toBeInstanceOf(CancelledError);
		expect((reason as CancelledError).reason).toBe('user pressed stop');
		expect(await manager.getRun(running)).toMatchObject({ status: 'cancelled' });
		expect(await manager.getRun(waiting)).toMatchObject({ status: 'cancelled' });
		expect(manager.isTaskActive(running)).toBe(false);
		expect(manager.getStats()).toMatchObject({ cancelled: 2, running: 0, queued: 0, pendingWrites: 2 });

		await sleep(500);
		await server.start();
		const upAt = Date.now();
		const landed = await manager.waitForRun(running, { timeoutMs: 20_000 });
		expect(await manager.waitAll({ timeoutMs: 20_000 })).toEqual({ settled: true, pending: [] });
		const landedMs = Date.now() - upAt;
		expect(landed).toMatchObject({ status: 'cancelled' });
		const [runningStored, waitingStored] = await stored(r, [running, waiting]);
		expect(runningStored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${running}" was cancelled: user pressed stop` } });
		expect(waitingStored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${waiting}" was cancelled: no longer needed` } });
		expect(waitingStored?.startedAt).toBeUndefined();
		expect(queuedCalled).toBe(false);
		report(`cancel while down: 2/2 cancelTask → true in ${cancelMs} ms with Redis down, signal aborted, 2 CANCELLED in Redis ${landedMs} ms after it was back`);
	});

	it('6. Redis never comes back (SIGKILL): waitAll({ timeoutMs: 500 }) → settled false, pending names the 6 unwritten runs; shutdown lists them unflushed', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		const { manager, errors } = managerOf(r, { instanceId: 'faults-gone' });

		const release = deferred();
		const before = Array.from({ length: 3 }, (_, index) =>
			manager.startTask({ moduleId: 'gone', parameters: { index } }, async () => {
				await release.promise;
				return { index };
			}),
		);
		await eventually('3 runs RUNNING in Redis', () => storedAll(r, before, (run) => run?.status === 'running'), 10_000);
		// And the manager has the replies: a reply lost with the server would leave it unsure whether
		// the add landed, and its retries would then be adds rather than the updates this test names.
		await manager.flush();

		// A crash, and no restart.
		await server.stop('SIGKILL');
		const after = Array.from({ length: 3 }, (_, index) => manager.startTask({ moduleId: 'gone', parameters: { index: index + 3 } }, () => ({ index: index + 3 })));
		release.resolve();
		const ids = [...before, ...after];
		await eventually('6 runs completed in the manager', () => manager.getStats().completed === 6, 5_000);

		const began = performance.now();
		const waited = await manager.waitAll({ timeoutMs: 500 });
		const waitedMs = performance.now() - began;
		expect(waited.settled).toBe(false);
		expect(sorted(waited.pending)).toEqual(sorted(ids));
		expect(waitedMs).toBeGreaterThanOrEqual(490);
		expect(waitedMs).toBeLessThan(500 + 250);
		expect(manager.getStats()).toMatchObject({ completed: 6, pendingWrites: 6 });
		const failedWrites = registryErrors(errors);
		expect(new Set(failedWrites.map((error) => error.runId))).toEqual(new Set(ids));
		expect(new Set(failedWrites.map((error) => error.operation))).toEqual(new Set(['addRun', 'updateRun']));

		// Still retrying: a second wait reports the same runs.
		expect(sorted((await manager.waitAll({ timeoutMs: 100 })).pending)).toEqual(sorted(ids));
		const result = await manager.shutdown({ graceMs: 0, abortGraceMs: 100 });
		expect(sorted(result.unflushed)).toEqual(sorted(ids));
		report(`Redis gone for good: waitAll({ timeoutMs: 500 }) returned in ${waitedMs.toFixed(0)} ms, settled false, pending ${waited.pending.length}/6; ${failedWrites.length} RegistryError events; shutdown unflushed ${result.unflushed.length}/6`);
	});

	it('7. Redis frozen (SIGSTOP: commands hang, no error) through shutdown({ graceMs: 300, abortGraceMs: 300 }): returns within 850 ms, lists the 5 unflushed runs', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const r = rig(server);
		const { manager } = managerOf(r, {
			instanceId: 'faults-frozen',
			bus: new RedisCancellationBus({ client: r.client, prefix: r.prefix }),
			ownerLease: { ttlMs: 3_000 },
		});
		const ids = Array.from({ length: 5 }, (_, index) =>
			manager.startTask({ moduleId: 'frozen', parameters: { index } }, ({ signal }) =>
				new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
			),
		);
		await eventually('5 runs RUNNING in Redis', () => storedAll(r, ids, (run) => run?.status === 'running'), 10_000);

		// Unlike a stopped server, nothing fails: every command sent from now on waits for an answer that never comes.
		server.pause();
		const began = performance.now();
		const result = await manager.shutdown({ graceMs: 300, abortGraceMs: 300 });
		const elapsedMs = performance.now() - began;
		expect(elapsedMs).toBeLessThanOrEqual(300 + 300 + 250);
		expect(sorted(result.cancelled)).toEqual(sorted(ids));
		expect(result.unsettled).toEqual([]);
		expect(sorted(result.unflushed)).toEqual(sorted(ids));

		// Closing the client rejects the commands still waiting (the terminal writes, the lease release): none may go unhandled.
		r.client.disconnect();
		await sleep(100);
		report(`shutdown with Redis frozen: returned in ${elapsedMs.toFixed(0)} ms (bound 850), cancelled 5, unflushed ${result.unflushed.length}/5`);
	});
});

/**
 * A manager whose connection to Redis misbehaves, each test on a redis-server of its own
 * (test/support/redis-server.ts) with the manager's client behind the TCP proxy of
 * test/redis/tcp-proxy.ts, and the truth read through a direct client:
 *
 * - (a) a flapping connection: every connection reset every 2 s while runs start and finish →
 *   every run's right terminal state in Redis. The full size (60 s, 1,000 runs) runs only with
 *   RUNLEDGER_SUITE=full (`npm run test:faults`); `npm test` runs 10 s and 200 runs.
 * - (a') the deterministic case behind (a): one reset while a write's reply is on its way back,
 *   after Redis applied it — ioredis re-sends the command on the new connection
 *   (`autoResendUnfulfilledCommands`, its default), so Redis sees the same write twice.
 * - (b) a slow Redis (200 ms, then 2 s added per direction): no pile-up of heartbeats or reaps (at
 *   most one call in flight, counted on the registry; the lease SETs on the wire seen with MONITOR
 *   on a direct connection), one terminal write and one terminal event per run, every run completes.
 * - (c) Redis down when the process gets SIGTERM: a real service process
 *   (test/redis/fixtures/sigterm-owner.ts) whose handler calls shutdown({ graceMs, abortGraceMs })
 *   returns within graceMs + abortGraceMs + 250 ms and then exits by itself (no process.exit),
 *   timed from here. (test/redis/faults.test.ts #4 is the in-process variant.)
 *
 * Time bounds are generous upper bounds; the figures are printed.
 */
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BackgroundTaskManager, type BackgroundTaskManagerOptions, type Run, type RunledgerError } from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { Cleanup, FAULT_TOLERANT_CLIENT_OPTIONS, RedisServer, faultTolerantClient, sleep } from './fault-support.js';
import { FixtureProcess } from './fixtures/child.js';
import type { SigtermOwnerConfig, SigtermOwnerMessage } from './fixtures/sigterm-owner.js';
import { redisUrl, uniquePrefix } from './support.js';
import { type TcpProxy, startTcpProxy } from './tcp-proxy.js';

failOnUnhandledErrorsAfterEach();

const FULL = process.env.RUNLEDGER_SUITE === 'full';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

let cleanup: Cleanup;

beforeEach(() => {
	cleanup = new Cleanup();
});
afterEach(async () => {
	await cleanup.run();
});

/** A redis-server of the test's own, a proxy in front of it, a client through the proxy and one direct. */
async function rig(): Promise<{ server: RedisServer; proxy: TcpProxy; viaProxy: Redis; direct: Redis; clientErrors: unknown[] }> {
	const server = await RedisServer.started();
	cleanup.defer(() => server.destroy());
	const proxy = await startTcpProxy(server.port);
	cleanup.defer(() => proxy.close());
	const clientErrors: unknown[] = [];
	const viaProxy = new Redis({ host: '127.0.0.1', port: proxy.port, ...FAULT_TOLERANT_CLIENT_OPTIONS });
	viaProxy.on('error', (error: unknown) => clientErrors.push(error));
	cleanup.defer(() => viaProxy.disconnect());
	const direct = faultTolerantClient(server.url, []);
	cleanup.defer(() => direct.disconnect());
	// Both connected and past their ready check (an INFO each): a MONITOR started after this sees no
	// feed line while ioredis is still switching the connection, which it would take for a reply
	// ("Command queue state error", seen once in CI when a ready check's INFO came in then).
	await Promise.all([viaProxy.ping(), direct.ping()]);
	return { server, proxy, viaProxy, direct, clientErrors };
}

/** A manager on `client`, with its `error` events and its own last word on each run (its last terminal event: status and error name). */
function managerOf(
	client: Redis,
	prefix: string,
	options: BackgroundTaskManagerOptions,
): { manager: BackgroundTaskManager; errors: RunledgerError[]; decided: Map<string, string> } {
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), options);
	const errors: RunledgerError[] = [];
	manager.on('error', (error) => errors.push(error));
	const decided = new Map<string, string>();
	for (const event of ['completed', 'failed', 'cancelled'] as const) manager.on(event, (run) => decided.set(run.runId, `${run.status}${run.error ? ` ${run.error.name}` : ''}`));
	cleanup.defer(() => manager.shutdown({ graceMs: 0, abortGraceMs: 100 }));
	return { manager, errors, decided };
}

async function storedRuns(registry: RedisRunRegistry, runIds: readonly string[]): Promise<Array<Run | undefined>> {
	const runs: Array<Run | undefined> = [];
	for (let start = 0; start < runIds.length; start += 1_000) runs.push(...(await registry.getRuns(runIds.slice(start, start + 1_000))));
	return runs;
}

/** Wraps `registry[method]` to count its calls and how many are in flight at once. */
function inFlightOf(registry: RedisRunRegistry, method: 'heartbeat' | 'reapOrphans'): { readonly calls: number; readonly maxInFlight: number; readonly longestMs: number } {
	const stats = { calls: 0, inFlight: 0, maxInFlight: 0, longestMs: 0 };
	const original = (registry[method] as (...args: unknown[]) => Promise<unknown>).bind(registry);
	(registry as unknown as Record<string, unknown>)[method] = async (...args: unknown[]): Promise<unknown> => {
		stats.calls++;
		stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
		const began = performance.now();
		try {
			return await original(...args);
		} finally {
			stats.inFlight--;
			stats.longestMs = Math.max(stats.longestMs, performance.now() - began);
		}
	};
	return stats;
}

/** Wraps the registry's writes to count, per run, the writes that carry a terminal status. */
function countTerminalWrites(registry: RedisRunRegistry): Map<string, number> {
	const counts = new Map<string, number>();
	const count = (runId: string, status: string | undefined): void => {
		if (status !== undefined && TERMINAL.has(status)) counts.set(runId, (counts.get(runId) ?? 0) + 1);
	};
	const addRun = registry.addRun.bind(registry);
	registry.addRun = (run) => {
		count(run.runId, run.status);
		return addRun(run);
	};
	const updateRun = registry.updateRun.bind(registry);
	registry.updateRun = (runId, patch, options) => {
		count(runId, patch.status);
		return updateRun(runId, patch, options);
	};
	// The batch write, where the registry has one (looked up loosely: the writer's interface is evolving).
	type Write = { readonly type: 'add'; readonly run: Run } | { readonly type: 'update'; readonly runId: string; readonly patch: { readonly status?: string } };
	const batched = registry as unknown as { applyWrites?: (writes: readonly Write[]) => Promise<unknown> };
	const applyWrites = batched.applyWrites?.bind(registry);
	if (applyWrites !== undefined) {
		batched.applyWrites = (writes) => {
			for (const write of writes) {
				if (write.type === 'add') count(write.run.runId, write.run.status);
				else count(write.runId, write.patch.status);
			}
			return applyWrites(writes);
		};
	}
	return counts;
}

const countBy = <T>(values: Iterable<T>, key: (value: T) => string): Record<string, number> => {
	const counts: Record<string, number> = {};
	for (const value of values) counts[key(value)] = (counts[key(value)] ?? 0) + 1;
	return counts;
};

describe.skipIf(redisUrl === null)('connection faults between a manager and Redis (a redis-server per test, a TCP proxy in between)', () => {
	describe('(a) a flapping connection', () => {
		const durationMs = FULL ? 60_000 : 10_000;
		const runs = FULL ? 1_000 : 200;
		const resetEveryMs = 2_000;

		it(`every connection of the manager reset every ${resetEveryMs / 1_000} s for ${durationMs / 1_000} s while ${runs} runs start and finish → ${runs}/${runs} right terminal states in Redis${FULL ? ' (full size)' : ' (fast size; RUNLEDGER_SUITE=full: 60 s, 1,000 runs)'}`, async () => {
			const { proxy, viaProxy, direct, clientErrors } = await rig();
			const prefix = uniquePrefix();
			const observer = new RedisRunRegistry({ client: direct, prefix });
			// Registry and bus through the proxy; a lease, reconcile, progress: every kind of write.
			const { manager, errors, decided } = managerOf(viaProxy, prefix, {
				instanceId: 'flappy',
				bus: new RedisCancellationBus({ client: viaProxy, prefix, pingIntervalMs: 1_000, pingTimeoutMs: 1_000 }),
				ownerLease: { ttlMs: 6_000 },
				reconcileIntervalMs: 500,
				progressThrottleMs: 50,
			});
			// Another instance on a direct connection reaps: a run of the flapping owner reaped would be a wrong state.
			managerOf(direct, prefix, { instanceId: 'reaper', ownerLease: { ttlMs: 6_000, reapIntervalMs: 200 }, reconcileIntervalMs: 600_000 });

			type Kind = 'complete' | 'fail' | 'cancel';
			const kindOf = (index: number): Kind => (index % 20 < 14 ? 'complete' : index % 20 < 17 ? 'fail' : 'cancel');
			const runIds: string[] = [];
			const cancelAnswers = new Map<string, boolean>();
			const cancels: Array<Promise<void>> = [];
			const began = performance.now();
			let rounds = 0;
			const flapping = setInterval(() => {
				rounds++;
				proxy.reset();
			}, resetEveryMs);
			cleanup.defer(() => clearInterval(flapping));

			// Starts spread over 80 % of the window; each run lasts up to 1 s, so all end within it.
			const spreadMs = durationMs * 0.8;
			for (let index = 0; index < runs; index++) {
				const wait = began + (index * spreadMs) / runs - performance.now();
				if (wait >= 1) await sleep(wait);
				const kind = kindOf(index);
				const lastsMs = 20 + Math.random() * 980;
				const runId = manager.startTask({ runId: `run-${index}`, moduleId: `flap-${kind}`, parameters: { index } }, async ({ signal, reportProgress }) => {
					let percent = 0;
					const until = performance.now() + lastsMs;
					while (kind === 'cancel' || performance.now() < until) {
						signal.throwIfAborted();
						reportProgress(++percent % 100, `step ${percent}`);
						await sleep(25);
					}
					if (kind === 'fail') throw new Error(`boom ${index}`);
					return { index };
				});
				runIds.push(runId);
				if (kind === 'cancel') {
					cancels.push(
						sleep(10 + Math.random() * 490)
							.then(() => manager.cancelTask(runId, 'flap'))
							.then((answer) => void cancelAnswers.set(runId, answer)),
					);
				}
			}
			await Promise.all(cancels);
			await sleep(Math.max(0, began + durationMs - performance.now()));
			clearInterval(flapping);
			const flappedMs = Math.round(performance.now() - began);
			const resets = proxy.resets;

			const waited = await manager.waitAll({ timeoutMs: 60_000 });
			const settledMs = Math.round(performance.now() - began - flappedMs);
			expect(waited).toEqual({ settled: true, pending: [] });

			// The truth, through the direct client: each run's terminal state is the one its task (or cancel) decided.
			const stored = await storedRuns(observer, runIds);
			const wrong: string[] = [];
			for (const [index, run] of stored.entries()) {
				const runId = runIds[index] as string;
				const kind = kindOf(index);
				const ok =
					run !== undefined &&
					run.ownerId === 'flappy' &&
					(kind === 'complete'
						? run.status === 'completed' && (run.result as { index?: number } | undefined)?.index === index && run.error === undefined
						: kind === 'fail'
							? run.status === 'failed' && run.error?.message === `boom ${index}` && run.result === undefined
							: run.status === 'cancelled' && run.error?.name === 'CancelledError' && cancelAnswers.get(runId) === true);
				if (!ok) wrong.push(`${runId} (${kind}): Redis ${run === undefined ? 'missing' : `${run.status}${run.error ? ` ${run.error.name}: ${run.error.message}` : ''}`}, manager ${decided.get(runId) ?? 'no terminal event'}`);
			}
			// The indexes agree: nothing left queued or running, the owner has no active set.
			const statusCounts = Object.fromEntries(
				await Promise.all(['queued', 'running', 'completed', 'failed', 'cancelled'].map(async (status) => [status, await direct.zcard(observer.keys.status(status))] as const)),
			);
			const errorCodes = countBy(errors, (error) => `${error.name}/${error.code}`);
			// Connection trouble may be reported; a claim that another run holds one of ours may not (every id here is unique).
			const storedById = new Map(stored.map((run, index) => [runIds[index] as string, run]));
			const falseClaims = errors
				.filter((error) => error.name === 'RunExistsError' || error.name === 'RunNotFoundError')
				.map((error) => {
					const runId = (error as { runId?: string }).runId ?? '?';
					const run = storedById.get(runId);
					return `${error.name} for ${runId} (Redis ${run?.status ?? 'missing'}, manager ${decided.get(runId) ?? 'no terminal event'})`;
				});
			console.log(
				`[connection-faults] flapping: ${runs} runs over ${flappedMs} ms, ${rounds} resets of every connection (every ${resetEveryMs} ms; ${resets} connections reset, the registry's and the bus subscriber's), proxy accepted ${proxy.accepted}; ` +
					`all settled ${settledMs} ms after the flapping stopped; ${runs - wrong.length}/${runs} right terminal states in Redis (${JSON.stringify(countBy(stored, (run) => run?.status ?? 'missing'))}); ` +
					`status index ${JSON.stringify(statusCounts)}; manager error events ${JSON.stringify(errorCodes)}; ${clientErrors.length} ioredis error events` +
					(wrong.length > 0 ? `; WRONG: ${wrong.slice(0, 10).join('; ')}${wrong.length > 10 ? ` … (${wrong.length})` : ''}` : '') +
					(falseClaims.length > 0 ? `; FALSE CLAIMS: ${falseClaims.join('; ')}` : ''),
			);
			expect(rounds).toBeGreaterThanOrEqual(Math.floor(durationMs / resetEveryMs) - 1);
			expect(resets).toBeGreaterThanOrEqual(rounds);
			expect(wrong).toEqual([]);
			expect(falseClaims).toEqual([]);
			expect(statusCounts.queued).toBe(0);
			expect(statusCounts.running).toBe(0);
			expect(await direct.exists(observer.keys.active('flappy'))).toBe(0);
			expect(manager.getStats()).toMatchObject({ queued: 0, running: 0, draining: 0, pendingWrites: 0 });
		}, FULL ? 240_000 : 60_000);
	});

	it("(a') one reset after Redis applied a write but before its reply came back (ioredis re-sends the command on the new connection): an add, a queued → running start and a terminal write each still end COMPLETED in Redis, no task aborted", async () => {
		const { proxy, viaProxy, direct } = await rig();

		/** A task that completes with `{ runId }` on `release(runId)` and records its calls and aborts. */
		const tasks = (): { called: string[]; aborted: string[]; release: (runId: string) => void; task: (context: { runId: string; signal: AbortSignal }) => Promise<unknown> } => {
			const called: string[] = [];
			const aborted: string[] = [];
			const releases = new Map<string, () => void>();
			return {
				called,
				aborted,
				release: (runId) => releases.get(runId)?.(),
				task: ({ runId, signal }) =>
					new Promise((resolve, reject) => {
						called.push(runId);
						releases.set(runId, () => resolve({ runId }));
						signal.addEventListener('abort', () => {
							aborted.push(`${runId}: ${(signal.reason as Error).name}`);
							reject(signal.reason as Error);
						}, { once: true });
					}),
			};
		};
		/** Slows the link, does `act`, waits until Redis holds what it wrote, then resets the connection while the reply is still on its way back. */
		const loseReply = async (prefix: string, runId: string, status: string, act: () => void): Promise<void> => {
			const registry = new RedisRunRegistry({ client: direct, prefix });
			proxy.setLatency(300);
			act();
			const deadline = performance.now() + 5_000;
			while ((await registry.getRun(runId))?.status !== status) {
				if (performance.now() > deadline) throw new Error(`${runId} never became ${status} in Redis`);
				await sleep(5);
			}
			proxy.reset();
			proxy.setLatency(0);
		};
		// What Redis holds, and what the manager decided (its terminal event).
		const outcome = async (prefix: string, decided: ReadonlyMap<string, string>, runId: string): Promise<string> => {
			const run = await new RedisRunRegistry({ client: direct, prefix }).getRun(runId);
			return `${runId}: Redis ${run?.status ?? 'missing'}${run?.error ? ` ${run.error.name}` : ''}, manager ${decided.get(runId) ?? 'undecided'}`;
		};

		// 1. The add: a run on a free slot is added RUNNING in one write.
		const addPrefix = uniquePrefix();
		const add = managerOf(viaProxy, addPrefix, { instanceId: 'resent-add', reconcileIntervalMs: 600_000 });
		const addTasks = tasks();
		await loseReply(addPrefix, 'added', 'running', () => void add.manager.startTask({ runId: 'added', moduleId: 'resent' }, addTasks.task));
		await add.manager.flush();
		addTasks.release('added');
		await add.manager.waitAll({ timeoutMs: 10_000 });

		// 2. A start: a run QUEUED in Redis behind concurrency 1 starts when the first one ends (its terminal write and the start go out together).
		const startPrefix = uniquePrefix();
		const start = managerOf(viaProxy, startPrefix, { instanceId: 'resent-start', concurrency: 1, reconcileIntervalMs: 600_000 });
		const startTasks = tasks();
		start.manager.startTask({ runId: 'first', moduleId: 'resent' }, startTasks.task);
		start.manager.startTask({ runId: 'second', moduleId: 'resent' }, startTasks.task);
		await start.manager.flush();
		await loseReply(startPrefix, 'second', 'running', () => startTasks.release('first'));
		await start.manager.flush();
		startTasks.release('second');
		await start.manager.waitAll({ timeoutMs: 10_000 });

		// 3. A terminal write on its own.
		const endPrefix = uniquePrefix();
		const end = managerOf(viaProxy, endPrefix, { instanceId: 'resent-end', reconcileIntervalMs: 600_000 });
		const endTasks = tasks();
		end.manager.startTask({ runId: 'ended', moduleId: 'resent' }, endTasks.task);
		await end.manager.flush();
		await loseReply(endPrefix, 'ended', 'completed', () => endTasks.release('ended'));
		await end.manager.waitAll({ timeoutMs: 10_000 });

		const outcomes = [await outcome(addPrefix, add.decided, 'added'), await outcome(startPrefix, start.decided, 'first'), await outcome(startPrefix, start.decided, 'second'), await outcome(endPrefix, end.decided, 'ended')];
		const errors = [...add.errors, ...start.errors, ...end.errors].map((error) => `${error.name}: ${error.message}`);
		const aborted = [...addTasks.aborted, ...startTasks.aborted, ...endTasks.aborted];
		console.log(
			`[connection-faults] reply lost after Redis applied the write (${proxy.resets} resets): ${outcomes.join('; ')}; functions called: ${[...addTasks.called, ...startTasks.called, ...endTasks.called].join(', ')}; ` +
				`aborted: ${JSON.stringify(aborted)}; manager errors: ${JSON.stringify(errors)}`,
		);
		expect(outcomes).toEqual(['added: Redis completed, manager completed', 'first: Redis completed, manager completed', 'second: Redis completed, manager completed', 'ended: Redis completed, manager completed']);
		expect(aborted).toEqual([]);
		expect([...addTasks.called, ...startTasks.called, ...endTasks.called]).toEqual(['added', 'first', 'second', 'ended']);
		expect(errors).toEqual([]);
	}, 60_000);

	it('(b) Redis slowed by the proxy — 200 ms, then 2 s added per direction and chunk: at most 1 heartbeat (interval 500 ms) and 1 reap in flight, 1 terminal write and 1 terminal event per run, 30/30 runs COMPLETED', async () => {
		const { proxy, viaProxy, direct } = await rig();
		// What reaches Redis: the lease renewals (SET … PX) as MONITOR on a direct connection sees them.
		// Started before any traffic of this test (rig() waited for both clients' ready checks): ioredis mistakes a feed line that arrives while it is still
		// switching the connection to MONITOR for a reply ("Command queue state error").
		const monitor = await direct.monitor();
		cleanup.defer(() => monitor.disconnect());
		const prefix = uniquePrefix();
		const observer = new RedisRunRegistry({ client: direct, prefix });
		const heartbeatIntervalMs = 500;
		// The slow manager's registry, watched: calls in flight, and terminal writes per run.
		const registry = new RedisRunRegistry({ client: viaProxy, prefix });
		const heartbeats = inFlightOf(registry, 'heartbeat');
		const reaps = inFlightOf(registry, 'reapOrphans');
		const terminalWrites = countTerminalWrites(registry);
		const manager = new BackgroundTaskManager(registry, {
			instanceId: 'slowpoke',
			// A lease far longer than a round trip of 4 s, renewed (and reaping) far more often than one takes.
			ownerLease: { ttlMs: 15_000, heartbeatIntervalMs, reapIntervalMs: heartbeatIntervalMs },
			reconcileIntervalMs: heartbeatIntervalMs,
			progressThrottleMs: 100,
		});
		const errors: RunledgerError[] = [];
		manager.on('error', (error) => errors.push(error));
		cleanup.defer(() => manager.shutdown({ graceMs: 0, abortGraceMs: 100 }));
		const terminalEvents = new Map<string, number>();
		for (const event of ['completed', 'failed', 'cancelled'] as const) manager.on(event, (run) => terminalEvents.set(run.runId, (terminalEvents.get(run.runId) ?? 0) + 1));
		// Another instance reaps over a direct connection: a lease lost to the slowness would show.
		managerOf(direct, prefix, { instanceId: 'watcher', ownerLease: { ttlMs: 15_000, reapIntervalMs: 200 }, reconcileIntervalMs: 600_000 });

		const leaseKey = observer.keys.lease('slowpoke');
		const setsAt: number[] = [];
		monitor.on('monitor', (_time: string, args: string[]) => {
			if (args[0]?.toLowerCase() === 'set' && args[1] === leaseKey) setsAt.push(performance.now());
		});

		const task = (index: number, ms: number) => async ({ reportProgress }: { reportProgress: (percent: number) => void }): Promise<unknown> => {
			for (let elapsed = 0; elapsed < ms; elapsed += 50) {
				reportProgress(Math.round((elapsed / ms) * 100));
				await sleep(50);
			}
			return { index };
		};
		const phase = async (latencyMs: number, count: number, first: number): Promise<{ runIds: string[]; tookMs: number; from: number }> => {
			proxy.setLatency(latencyMs);
			const from = performance.now();
			const runIds = Array.from({ length: count }, (_, offset) =>
				manager.startTask({ runId: `run-${first + offset}`, moduleId: 'slow', parameters: { index: first + offset } }, task(first + offset, 300 + Math.random() * 500)),
			);
			expect(await manager.waitAll({ timeoutMs: 60_000 })).toEqual({ settled: true, pending: [] });
			return { runIds, tookMs: Math.round(performance.now() - from), from };
		};

		await manager.flush();
		const slow = await phase(200, 20, 0);
		const slower = await phase(2_000, 10, 20);
		// A few more heartbeat intervals at 2 s per direction, with nothing else to do.
		await sleep(2_000);
		const end = performance.now();

		// On the wire: a SET that reached Redis at `a` left at a − 2 s and was answered at a + 2 s;
		// two overlap when the later one left before the earlier one's answer came (100 ms tolerance).
		const wire = setsAt.filter((at) => at >= slower.from + 2_000 && at <= end);
		const wireGaps = wire.slice(1).map((at, index) => Math.round(at - (wire[index] as number)));
		const wireOverlaps = wireGaps.filter((gap) => gap < 4_000 - 100).length;
		const runIds = [...slow.runIds, ...slower.runIds];
		const stored = await storedRuns(observer, runIds);
		console.log(
			`[connection-faults] slow Redis: at +200 ms per direction 20 runs completed in ${slow.tookMs} ms; at +2 s per direction 10 runs in ${slower.tookMs} ms; ` +
				`heartbeats (interval ${heartbeatIntervalMs} ms): ${heartbeats.calls} calls, at most ${heartbeats.maxInFlight} in flight, the longest ${Math.round(heartbeats.longestMs)} ms; ` +
				`on the wire at 2 s: ${wire.length} SETs, gaps ${JSON.stringify(wireGaps)} ms (a round trip is 4,000 ms), ${wireOverlaps} overlapping; ` +
				`reaps (interval ${heartbeatIntervalMs} ms): ${reaps.calls} calls, at most ${reaps.maxInFlight} in flight; ` +
				`terminal writes per run ${JSON.stringify(countBy(terminalWrites.values(), String))}, terminal events per run ${JSON.stringify(countBy(terminalEvents.values(), String))}; ` +
				`stored: ${JSON.stringify(countBy(stored, (run) => (run === undefined ? 'missing' : `${run.status}${run.error ? ` ${run.error.name}` : ''}`)))}; manager errors: ${errors.length}`,
		);
		expect(heartbeats.maxInFlight).toBe(1);
		expect(reaps.maxInFlight).toBe(1);
		// The 2 s phase and the wait after it last over 10 s: without the guard, 500 ms intervals would have sent over 20.
		expect(heartbeats.calls).toBeLessThan(20);
		expect(wire.length).toBeGreaterThanOrEqual(2);
		expect(wireOverlaps).toBe(0);
		expect([...terminalWrites.values()]).toEqual(runIds.map(() => 1));
		expect([...terminalEvents.values()]).toEqual(runIds.map(() => 1));
		for (const [index, run] of stored.entries()) expect(run, runIds[index]).toMatchObject({ status: 'completed', ownerId: 'slowpoke', result: { index } });
		expect(errors).toEqual([]);
	}, 90_000);

	it('(c) Redis down (SIGTERM to redis-server), then SIGTERM to a service process: its shutdown({ graceMs: 300, abortGraceMs: 300 }) returns within 850 ms and the process exits by itself, code 0', async () => {
		const server = await RedisServer.started();
		cleanup.defer(() => server.destroy());
		const prefix = uniquePrefix();
		const graceMs = 300;
		const abortGraceMs = 300;
		const config: SigtermOwnerConfig = { redisUrl: server.url, prefix, instanceId: 'service', graceMs, abortGraceMs, finishers: 4, unwinders: 6, queued: 2 };
		const service = new FixtureProcess<SigtermOwnerMessage>({ fixture: 'sigterm-owner.ts', name: 'the service', config, ipc: false });
		cleanup.defer(() => service.kill());
		const { runIds } = await service.next('ready');
		const direct = faultTolerantClient(server.url, []);
		cleanup.defer(() => direct.disconnect());
		const before = await new RedisRunRegistry({ client: direct, prefix }).getRuns(runIds);
		expect(before.map((run) => run?.status)).toEqual([...Array(10).fill('running'), 'queued', 'queued']);
		direct.disconnect();

		await server.stop('SIGTERM');
		const signalledAt = performance.now();
		service.signal('SIGTERM');
		const shutDown = await service.next('shut-down', undefined, 10_000);
		const shutDownSeenMs = Math.round((service.arrival('shut-down') as number) - signalledAt);
		const closed = await service.next('closed', undefined, 10_000);
		const exit = await Promise.race([service.exited, sleep(20_000).then(() => 'still running after 20 s' as const)]);
		const exitMs = Math.round((service.exitAt ?? Number.NaN) - signalledAt);
		const afterClosedMs = Math.round((service.exitAt ?? Number.NaN) - (service.arrival('closed') as number));
		const boundMs = graceMs + abortGraceMs + 250;
		console.log(
			`[connection-faults] SIGTERM with Redis down: shutdown() returned in ${Math.round(shutDown.elapsedMs)} ms (bound ${boundMs}; seen here ${shutDownSeenMs} ms after the signal), ` +
				`finished ${shutDown.report.finished.length}, cancelled ${shutDown.report.cancelled.length}, unsettled ${shutDown.report.unsettled.length}, unflushed ${shutDown.report.unflushed.length}/12, ${shutDown.registryErrors} registry errors; ` +
				`the process exited by itself ${exitMs} ms after SIGTERM (${JSON.stringify(exit)}), ${afterClosedMs} ms after its handler had closed the clients and returned; ` +
				`left at that moment: ${JSON.stringify(countBy(closed.resources, String))} (stdout/stderr pipes, and ioredis' disconnectTimeout fallbacks of 2,000 ms for the client and the bus subscriber)`,
		);
		expect(shutDown.elapsedMs).toBeLessThanOrEqual(boundMs);
		expect(shutDown.report.finished.sort()).toEqual(runIds.filter((runId) => runId.startsWith('finisher-')).sort());
		expect(shutDown.report.cancelled.sort()).toEqual(runIds.filter((runId) => !runId.startsWith('finisher-')).sort());
		expect(shutDown.report.unsettled).toEqual([]);
		expect(shutDown.report.unflushed.sort()).toEqual([...runIds].sort());
		expect(exit).toEqual({ code: 0, signal: null });
		// ioredis keeps a 2 s fallback timer per connection it disconnects without a live socket
		// (disconnectTimeout, see faults.test.ts #4); beyond that, nothing may hold the process.
		expect(exitMs).toBeLessThanOrEqual(boundMs + 2_000 + 1_000);
		expect(service.all('fatal')).toEqual([]);
	}, 60_000);
});

/**
 * runledger across real processes: an owner (test/redis/fixtures/owner.ts) runs a
 * BackgroundTaskManager in a child process on the test redis-server, and this process — another
 * instance on the same prefix — lists, cancels, outlives and races it. Children are killed with
 * real signals (SIGKILL, SIGSTOP / SIGCONT); nothing is mocked.
 *
 * Deadlines are generous correctness bounds, not speed targets: the measured figures are printed.
 */
import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { BackgroundTaskManager, type BackgroundTaskManagerOptions, type Run } from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import { FixtureProcess, killAll } from './fixtures/child.js';
import type { OwnerCommand, OwnerConfig, OwnerMessage } from './fixtures/owner.js';
import { connect, redisUrl, uniquePrefix } from './support.js';

type MessageOf<T extends OwnerMessage['type']> = Extract<OwnerMessage, { type: T }>;

/** One owner process (test/redis/fixtures/owner.ts) and everything it said. */
class Owner extends FixtureProcess<OwnerMessage, OwnerCommand> {
	constructor(readonly config: OwnerConfig) {
		super({ fixture: 'owner.ts', config, name: `the owner ${config.instanceId}` });
	}

	/** Lets the owner settle and shut down; expects it to exit with code 0, no fatal message. */
	async finish(command: Omit<OwnerCommand, 'type'> = {}): Promise<MessageOf<'settled'>> {
		this.send({ type: 'finish', ...command });
		const settled = await this.next('settled', undefined, 60_000);
		await this.next('shut-down', undefined, 20_000);
		const exit = await Promise.race([this.exited, sleep(20_000).then(() => 'timeout' as const)]);
		expect(exit, `owner ${this.config.instanceId} exits by itself after its shutdown\n${this.output}`).toEqual({ code: 0, signal: null });
		expect(this.all('fatal')).toEqual([]);
		return settled;
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it returns true; fails after `timeoutMs`. Resolves with the time it took. */
async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
	const started = Date.now();
	for (;;) {
		if (await check()) return Date.now() - started;
		if (Date.now() - started > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(everyMs);
	}
}

let client: Redis;
const owners: Owner[] = [];
const managers: BackgroundTaskManager[] = [];

function startOwner(config: Omit<OwnerConfig, 'redisUrl'>): Owner {
	const owner = new Owner({ redisUrl: redisUrl as string, ...config });
	owners.push(owner);
	return owner;
}

/** The parent's instance: a manager of this process on the same prefix. */
function parentManager(prefix: string, options: BackgroundTaskManagerOptions & { withBus?: boolean } = {}): BackgroundTaskManager {
	const { withBus = true, ...rest } = options;
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), {
		instanceId: 'parent',
		reconcileIntervalMs: 600_000,
		...(withBus ? { bus: new RedisCancellationBus({ client, prefix }) } : {}),
		...rest,
	});
	managers.push(manager);
	return manager;
}

async function getRuns(registry: RedisRunRegistry, runIds: readonly string[]): Promise<Run[]> {
	const runs: Run[] = [];
	for (let start = 0; start < runIds.length; start += 1_000) {
		for (const [index, run] of (await registry.getRuns(runIds.slice(start, start + 1_000))).entries()) {
			if (run === undefined) throw new Error(`Run ${runIds[start + index]} is missing from Redis`);
			runs.push(run);
		}
	}
	return runs;
}

/** Every run of `ownerId` that Redis holds queued or running (all pages). */
async function activeRunsOf(manager: BackgroundTaskManager, ownerId: string): Promise<Run[]> {
	return (await manager.listRuns({ ownerId, status: ['queued', 'running'], limit: 10_000 })).runs;
}

const ids = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
const sorted = (values: Iterable<string>): string[] => [...values].sort();

describe.skipIf(redisUrl === null)('runledger across processes (owner in a child process, real signals)', () => {
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});
	afterEach(async () => {
		// SIGKILL works on a stopped process too.
		const fatal = await killAll(owners);
		await Promise.all(managers.splice(0).map((manager) => manager.shutdown({ graceMs: 0, abortGraceMs: 100 })));
		expect(fatal, 'no owner process had an unhandled rejection or uncaught exception').toEqual([]);
	});

	describe('1. a parent lists and cancels the runs of an owner in another process', () => {
		it('lists all 8 running runs of the child, cancels one (the child aborts it) and an item of 4 (count 4, each aborted), through the Redis bus', async () => {
			const prefix = uniquePrefix();
			const parent = parentManager(prefix);
			const owner = startOwner({
				prefix,
				instanceId: 'owner-a',
				bus: true,
				// Far away, and the cancelled tasks write nothing: whatever aborts them, the bus did it.
				reconcileIntervalMs: 600_000,
				groups: [
					{ idPrefix: 'solo', count: 3, moduleId: 'render', itemId: 'item-solo', behaviour: { kind: 'until-aborted' } },
					{ idPrefix: 'item', count: 4, moduleId: 'render', itemId: 'item-x', behaviour: { kind: 'until-aborted' } },
					{ idPrefix: 'ticker', count: 1, moduleId: 'report', behaviour: { kind: 'until-aborted', progressEveryMs: 50 } },
				],
			});
			const { runIds } = await owner.next('ready');
			expect(runIds).toHaveLength(8);

			// Every run is in Redis, RUNNING and owned by the child, once its first writes landed.
			const page = await parent.listRuns({ status: 'running', ownerId: 'owner-a' });
			expect(sorted(page.runs.map((run) => run.runId))).toEqual(sorted(runIds));
			expect(page.runs.every((run) => run.ownerId === 'owner-a' && run.startedAt !== undefined)).toBe(true);
			expect(sorted(owner.all('called').map((message) => message.runId))).toEqual(sorted(runIds));
			// Progress written by the child is read here.
			await pollUntil('progress of the ticker run', async () => ((await parent.getRun('ticker-0'))?.progress?.percent ?? 0) > 0, 5_000, 50);

			// One run.
			const before = Date.now();
			expect(await parent.cancelTask('solo-0', 'stop from parent')).toBe(true);
			const aborted = await owner.next('aborted', (message) => message.runId === 'solo-0');
			console.log(`[cross-process] cancel of one run: the child's signal aborted ${aborted.at - before} ms after cancelTask was called`);
			expect(aborted).toMatchObject({ reason: 'CancelledError', code: 'ERR_CANCELLED' });
			expect(aborted.message).toContain('stop from parent');
			expect(await parent.cancelTask('solo-0')).toBe(false);
			await pollUntil('solo-0 to be written CANCELLED', async () => (await parent.getRun('solo-0'))?.status === 'cancelled', 5_000, 20);
			expect(await parent.getRun('solo-0')).toMatchObject({ status: 'cancelled', ownerId: 'owner-a', error: { name: 'CancelledError' } });

			// One item: every active run of it, wherever it runs.
			const itemRuns = ids('item', 4);
			expect(await parent.cancelItemTasks('item-x', 'item deleted')).toBe(4);
			const itemAborts = await Promise.all(itemRuns.map((runId) => owner.next('aborted', (message) => message.runId === runId)));
			expect(itemAborts.every((message) => message.reason === 'CancelledError' && message.message.includes('item deleted'))).toBe(true);
			for (const runId of itemRuns) expect((await parent.getRun(runId))?.status).toBe('cancelled');
			expect(await parent.cancelItemTasks('item-x')).toBe(0);

			// The others run on, untouched.
			const left = await activeRunsOf(parent, 'owner-a');
			expect(sorted(left.map((run) => run.runId))).toEqual(['solo-1', 'solo-2', 'ticker-0']);
			expect(left.every((run) => run.status === 'running')).toBe(true);
			expect(sorted(owner.all('aborted').map((message) => message.runId))).toEqual(sorted(['solo-0', ...itemRuns]));

			// The child's shutdown cancels the rest; it exits 0 and leaves nothing active.
			const settled = await owner.finish({ graceMs: 0 });
			expect(settled.stats).toMatchObject({ queued: 0, running: 3, cancelled: 5 });
			expect(await activeRunsOf(parent, 'owner-a')).toEqual([]);
			for (const runId of ['solo-1', 'solo-2', 'ticker-0']) {
				expect(await parent.getRun(runId)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError' } });
			}
		});

		it('cancels a run QUEUED in a child with concurrency 1: its function is never called (called: blocker-0, waiting-1 — not waiting-0)', async () => {
			const prefix = uniquePrefix();
			const parent = parentManager(prefix);
			const owner = startOwner({
				prefix,
				instanceId: 'owner-q',
				bus: true,
				reconcileIntervalMs: 600_000,
				concurrency: 1,
				groups: [
					{ idPrefix: 'blocker', count: 1, moduleId: 'm', behaviour: { kind: 'until-aborted' } },
					{ idPrefix: 'waiting', count: 2, moduleId: 'm', behaviour: { kind: 'complete-after', ms: 20 } },
				],
			});
			await owner.next('ready');
			expect(sorted((await parent.listRuns({ status: 'queued', ownerId: 'owner-q' })).runs.map((run) => run.runId))).toEqual(['waiting-0', 'waiting-1']);
			expect((await parent.getRun('blocker-0'))?.status).toBe('running');

			expect(await parent.cancelTask('waiting-0', 'not needed')).toBe(true);
			// The slot frees right after: the child must still never call waiting-0, whichever of the
			// two cancels reaches it first (the registry holds waiting-0 CANCELLED already).
			expect(await parent.cancelTask('blocker-0')).toBe(true);
			await owner.next('cancelled', (message) => message.runId === 'waiting-0');
			await owner.next('aborted', (message) => message.runId === 'blocker-0');

			const settled = await owner.finish({ waitAll: true, waitAllTimeoutMs: 10_000 });
			expect(settled.waitAll?.settled).toBe(true);
			console.log(`[cross-process] queued cancel: functions called in the child: ${sorted(settled.called).join(', ')}`);
			expect(sorted(settled.called)).toEqual(['blocker-0', 'waiting-1']);
			expect(owner.all('called', (message) => message.runId === 'waiting-0')).toEqual([]);

			const waiting0 = await parent.getRun('waiting-0');
			expect(waiting0).toMatchObject({ status: 'cancelled', ownerId: 'owner-q', error: { name: 'CancelledError' } });
			expect(waiting0?.startedAt).toBeUndefined();
			expect(await parent.getRun('waiting-1')).toMatchObject({ status: 'completed', result: { index: 1 } });
			expect((await parent.getRun('blocker-0'))?.status).toBe('cancelled');
		});
	});

	it('2. crash: 100 RUNNING runs of a SIGKILLed child (ttlMs 1000) are all FAILED OwnerLostError by the parent (reapIntervalMs 250); prints the time to reap all 100', async () => {
		const ttlMs = 1_000;
		const reapIntervalMs = 250;
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix });
		const owner = startOwner({
			prefix,
			instanceId: 'owner-crash',
			bus: true,
			ownerLease: { ttlMs },
			groups: [{ idPrefix: 'run', count: 100, moduleId: 'render', behaviour: { kind: 'until-aborted', progressEveryMs: 50 } }],
		});
		const { runIds } = await owner.next('ready');
		parentManager(prefix, { ownerLease: { ttlMs, reapIntervalMs } });
		const running = await registry.listRuns({ status: 'running', ownerId: 'owner-crash', limit: 1_000 });
		expect(running.runs).toHaveLength(100);
		expect(await client.exists(registry.keys.lease('owner-crash'))).toBe(1);
		// The lease is alive and renewed: nothing is reaped while the child lives.
		await sleep(ttlMs + reapIntervalMs);
		expect((await registry.listRuns({ status: 'running', ownerId: 'owner-crash', limit: 1_000 })).runs).toHaveLength(100);

		owner.signal('SIGKILL');
		const killedAt = Date.now();
		expect(await owner.exited).toEqual({ code: null, signal: 'SIGKILL' });

		let runs: Run[] = [];
		const tookMs = await pollUntil(
			'every run of the killed child to be reaped',
			async () => {
				runs = await getRuns(registry, runIds);
				return runs.every((run) => run.status === 'failed');
			},
			ttlMs + reapIntervalMs + 3_000,
		);
		console.log(`[cross-process] crash: all 100 runs FAILED OwnerLostError ${Date.now() - killedAt} ms after SIGKILL (poll ${tookMs} ms; ttlMs ${ttlMs}, reapIntervalMs ${reapIntervalMs})`);
		expect(runs).toHaveLength(100);
		for (const run of runs) {
			expect(run).toMatchObject({ status: 'failed', ownerId: 'owner-crash', error: { name: 'OwnerLostError' } });
			expect(run.completedAt).toBeTypeOf('number');
		}
		expect(await activeRunsOf(managers[0]!, 'owner-crash')).toEqual([]);
		expect(await client.exists(registry.keys.active('owner-crash'))).toBe(0);
		expect(await client.sismember(registry.keys.owners, 'owner-crash')).toBe(0);
	});

	it('3. pause: a SIGSTOPped child (ttlMs 1000) is reaped; after SIGCONT it aborts its 20 copies (reconcileIntervalMs 200) and the stored FAILED OwnerLostError stays for 2 s', async () => {
		const ttlMs = 1_000;
		const reapIntervalMs = 250;
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix });
		const owner = startOwner({
			prefix,
			instanceId: 'owner-paused',
			bus: true,
			reconcileIntervalMs: 200,
			ownerLease: { ttlMs },
			groups: [{ idPrefix: 'run', count: 20, moduleId: 'render', behaviour: { kind: 'until-aborted', progressEveryMs: 50 } }],
		});
		const { runIds } = await owner.next('ready');
		parentManager(prefix, { ownerLease: { ttlMs, reapIntervalMs } });

		owner.signal('SIGSTOP');
		const stoppedAt = Date.now();
		let reaped: Run[] = [];
		await pollUntil(
			'every run of the stopped child to be reaped',
			async () => {
				reaped = await getRuns(registry, runIds);
				return reaped.every((run) => run.status === 'failed');
			},
			ttlMs + reapIntervalMs + 3_000,
		);
		const reapedAfter = Date.now() - stoppedAt;
		for (const run of reaped) {
			expect(run).toMatchObject({ status: 'failed', ownerId: 'owner-paused', error: { name: 'OwnerLostError' } });
			expect(run.result).toBeUndefined();
		}
		expect(owner.all('aborted')).toEqual([]);

		owner.signal('SIGCONT');
		const resumedAt = Date.now();
		// The resumed child's progress writes and reconciles must not overwrite what the reap stored.
		const watchUntil = resumedAt + 2_000;
		while (Date.now() < watchUntil) {
			expect(await getRuns(registry, runIds)).toEqual(reaped);
			await sleep(100);
		}
		const aborts = await Promise.all(runIds.map((runId) => owner.next('aborted', (message) => message.runId === runId, 5_000)));
		const lastAbortMs = Math.max(...aborts.map((message) => message.at)) - resumedAt;
		console.log(`[cross-process] pause: reaped ${reapedAfter} ms after SIGSTOP; after SIGCONT the child aborted all 20 copies within ${lastAbortMs} ms`);
		for (const message of aborts) expect(message).toMatchObject({ reason: 'RunledgerError', code: 'ERR_ENDED_ELSEWHERE' });

		await owner.finish({ graceMs: 0 });
		expect(await getRuns(registry, runIds)).toEqual(reaped);
		expect(await activeRunsOf(managers[0]!, 'owner-paused')).toEqual([]);
	});

	describe('4. lost bus messages: cancels still reach the owner through its reconcile (reconcileIntervalMs 300)', () => {
		const reconcileIntervalMs = 300;
		// A few intervals: a cancel is seen by the first reconcile after it, plus one batch read.
		const deadlineMs = 6 * reconcileIntervalMs;

		async function cancelAllAndMeasure(owner: Owner, parent: BackgroundTaskManager, runIds: readonly string[], label: string): Promise<void> {
			const cancelled = new Map<string, number>();
			await Promise.all(
				runIds.map(async (runId) => {
					expect(await parent.cancelTask(runId, 'lost message')).toBe(true);
					cancelled.set(runId, Date.now());
				}),
			);
			const lastCancel = Math.max(...cancelled.values());
			const aborts = await Promise.all(
				runIds.map((runId) => owner.next('aborted', (message) => message.runId === runId, Math.max(1, lastCancel + deadlineMs - Date.now()))),
			);
			const latencies = aborts.map((message) => Math.max(0, message.at - cancelled.get(message.runId)!));
			latencies.sort((a, b) => a - b);
			console.log(
				`[cross-process] lost messages (${label}): ${runIds.length} cancels honoured, min ${latencies[0]} ms, median ${latencies[latencies.length >> 1]} ms, max ${latencies[latencies.length - 1]} ms after cancelTask returned (reconcileIntervalMs ${reconcileIntervalMs}, deadline ${deadlineMs} ms)`,
			);
			for (const message of aborts) {
				expect(message.reason).toBe('CancelledError');
				expect(message.message).toContain('lost message');
			}
			for (const run of await getRuns(new RedisRunRegistry({ client, prefix: owner.config.prefix! }), runIds)) {
				expect(run).toMatchObject({ status: 'cancelled', ownerId: owner.config.instanceId, error: { name: 'CancelledError' } });
			}
		}

		it('a child with no bus at all: 10 cancels, each aborted within 6 intervals; prints the max delay', async () => {
			const prefix = uniquePrefix();
			const parent = parentManager(prefix);
			const owner = startOwner({
				prefix,
				instanceId: 'owner-deaf',
				bus: false,
				reconcileIntervalMs,
				// No progress: the tasks write nothing that could reveal the cancel; only the reconcile can.
				groups: [{ idPrefix: 'run', count: 10, moduleId: 'm', behaviour: { kind: 'until-aborted' } }],
			});
			const { runIds } = await owner.next('ready');
			await cancelAllAndMeasure(owner, parent, runIds, 'child without a bus');
			await owner.finish();
		});

		it("a child whose bus subscriber connection is killed (CLIENT KILL) right before 10 cancels: each aborted within 6 intervals; prints the max delay", async () => {
			const prefix = uniquePrefix();
			const parent = parentManager(prefix);
			const connectionName = `owner-cut-${randomUUID().slice(0, 8)}`;
			const owner = startOwner({
				prefix,
				instanceId: 'owner-cut',
				bus: true,
				connectionName,
				reconcileIntervalMs,
				groups: [{ idPrefix: 'run', count: 10, moduleId: 'm', behaviour: { kind: 'until-aborted' } }],
			});
			const { runIds } = await owner.next('ready');
			// The child's subscriber: its only pub/sub connection with that name.
			const subscriberIds = async (): Promise<string[]> => {
				const list = (await client.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
				return list
					.split('\n')
					.filter((line) => line.split(' ').includes(`name=${connectionName}`))
					.map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? '');
			};
			await pollUntil('the child to subscribe', async () => (await subscriberIds()).length === 1, 5_000, 20);
			const [subscriberId] = await subscriberIds();
			expect(await client.call('CLIENT', 'KILL', 'ID', subscriberId!)).toBe(1);
			await cancelAllAndMeasure(owner, parent, runIds, 'bus subscriber killed');
			await owner.finish();
		});
	});

	it('5. 10,000 cancel-versus-completion races between two processes: one terminal state per run, cancelTask true exactly for the CANCELLED runs; prints cancelled vs completed', async () => {
		const total = 10_000;
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix });
		const parent = parentManager(prefix);
		const owner = startOwner({
			prefix,
			instanceId: 'owner-race',
			bus: true,
			concurrency: 200,
			events: false,
			reconcileIntervalMs: 1_000,
			groups: [{ idPrefix: 'run', count: total, moduleId: 'race', behaviour: { kind: 'complete-after', maxMs: 20 } }],
		});
		const { runIds } = await owner.next('started');
		expect(runIds).toHaveLength(total);
		const startedAt = Date.now();

		// Each run's cancel at a random moment of a window about as long as the child takes to run them all.
		const windowMs = 4_000;
		const schedule = runIds.map((runId) => ({ runId, at: Math.random() * windowMs })).sort((a, b) => a.at - b.at);
		const answers = new Map<string, boolean>();
		const cancels: Array<Promise<void>> = [];
		for (const { runId, at } of schedule) {
			const wait = startedAt + at - Date.now();
			if (wait >= 1) await sleep(wait);
			cancels.push(parent.cancelTask(runId, 'race').then((cancelled) => void answers.set(runId, cancelled)));
		}
		await Promise.all(cancels);
		await parent.flush();
		const settled = await owner.finish({ waitAll: true, waitAllTimeoutMs: 40_000 });
		const elapsedMs = Date.now() - startedAt;
		expect(settled.waitAll).toEqual({ settled: true, pending: [] });

		const runs = await getRuns(registry, runIds);
		const byStatus = new Map<string, string[]>();
		for (const run of runs) byStatus.set(run.status, [...(byStatus.get(run.status) ?? []), run.runId]);
		const cancelled = new Set(byStatus.get('cancelled') ?? []);
		const completed = new Set(byStatus.get('completed') ?? []);
		const called = new Set(settled.called);
		const cancelledWhileRunning = [...cancelled].filter((runId) => called.has(runId)).length;
		console.log(
			`[cross-process] races: ${total} runs in ${elapsedMs} ms — ${cancelled.size} CANCELLED (${cancelled.size - cancelledWhileRunning} while queued, never called; ${cancelledWhileRunning} while running), ${completed.size} COMPLETED; ` +
				`child's own view: ${settled.completed.length} completed events, ${settled.aborted.length} signals aborted`,
		);

		// Exactly one terminal state per run, and only these two.
		expect(sorted(byStatus.keys())).toEqual(['cancelled', 'completed'].filter((status) => byStatus.has(status)));
		expect(cancelled.size + completed.size).toBe(total);
		expect(cancelled.size).toBeGreaterThan(0);
		expect(completed.size).toBeGreaterThan(0);
		// cancelTask said true for exactly the runs that ended CANCELLED.
		expect(answers.size).toBe(total);
		const answeredTrue = runIds.filter((runId) => answers.get(runId) === true);
		expect(sorted(answeredTrue)).toEqual(sorted(cancelled));
		for (const run of runs) {
			expect(run.ownerId).toBe('owner-race');
			if (run.status === 'completed') {
				expect(run.result).toEqual({ index: Number(run.runId.slice('run-'.length)) });
				expect(run.error).toBeUndefined();
				// A completed run was executed, and its signal never aborted.
				expect(called.has(run.runId)).toBe(true);
			} else {
				expect(run.result).toBeUndefined();
				expect(run.error?.name).toBe('CancelledError');
			}
		}
		expect(settled.aborted.filter((runId) => !cancelled.has(runId))).toEqual([]);

		// The indexes agree: each run in exactly one status set, nothing queued or running.
		const statusCounts = await Promise.all(['queued', 'running', 'completed', 'failed', 'cancelled'].map((status) => client.zcard(registry.keys.status(status))));
		expect(statusCounts).toEqual([0, 0, completed.size, 0, cancelled.size]);
		for (let start = 0; start < total; start += 1_000) {
			const chunk = runIds.slice(start, start + 1_000);
			const [inCompleted, inCancelled] = await Promise.all([client.zmscore(registry.keys.status('completed'), ...chunk), client.zmscore(registry.keys.status('cancelled'), ...chunk)]);
			chunk.forEach((runId, index) => {
				expect([inCompleted[index] !== null, inCancelled[index] !== null], runId).toEqual([completed.has(runId), cancelled.has(runId)]);
			});
		}
		expect(await activeRunsOf(parent, 'owner-race')).toEqual([]);
		expect(await client.exists(registry.keys.active('owner-race'))).toBe(0);
	}, 120_000);
});

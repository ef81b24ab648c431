/**
 * Owner leases under owner faults, with real owner processes (test/redis/fixtures/lease-owner.ts)
 * on the shared test redis-server and another instance — this process — reaping:
 *
 * - (a) a task that blocks its owner's event loop past the lease TTL (a busy-wait): every run of
 *   that owner ends in one terminal state — reaped FAILED OwnerLostError, or the owner's own
 *   outcome — which nothing overwrites afterwards, and the owner's events and views agree with it;
 * - (b) an owner whose wall clock is 300 s ahead or behind (Date.now, new Date() and
 *   performance.now faked by test/redis/fixtures/clock-offset.ts): no false OwnerLost over several
 *   TTLs, as leases live on Redis' clock; its runs complete normally;
 * - (c) 100 concurrent runs, a short TTL and reapers that never rest: zero false OwnerLost.
 *   (test/redis/cross-process.test.ts #2 only checks that 100 running runs of a live child are not
 *   reaped within one TTL before it kills the child; this one runs them to completion over 6 TTLs
 *   under a reaper calling reapOrphans every ~5 ms and the owner's own every 20 ms.)
 *
 * Time bounds are generous upper bounds; the figures are printed.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { BackgroundTaskManager, type BackgroundTaskManagerOptions, type Run } from '../../src/index.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { FixtureProcess, killAll, root } from './fixtures/child.js';
import type { LeaseOwnerCommand, LeaseOwnerConfig, LeaseOwnerMessage, RunEvent } from './fixtures/lease-owner.js';
import { connect, redisUrl, uniquePrefix } from './support.js';

failOnUnhandledErrorsAfterEach();

type Owner = FixtureProcess<LeaseOwnerMessage, LeaseOwnerCommand>;

const clockPreload = `${root}/test/redis/fixtures/clock-offset.ts`;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

let client: Redis;
const owners: Owner[] = [];
const managers: BackgroundTaskManager[] = [];

function startOwner(config: Omit<LeaseOwnerConfig, 'redisUrl'>, clockOffsetMs?: number): Owner {
	const owner: Owner = new FixtureProcess({
		fixture: 'lease-owner.ts',
		name: `owner ${config.instanceId}`,
		config: { redisUrl: redisUrl as string, ...config },
		...(clockOffsetMs === undefined ? {} : { imports: [clockPreload], env: { RUNLEDGER_CLOCK_OFFSET_MS: String(clockOffsetMs) } }),
	});
	owners.push(owner);
	return owner;
}

/** Another instance on the prefix, in this process: reaps (with a lease of its own) and reads. */
function otherInstance(prefix: string, options: BackgroundTaskManagerOptions): BackgroundTaskManager {
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), { instanceId: 'parent', reconcileIntervalMs: 600_000, ...options });
	managers.push(manager);
	return manager;
}

/** Lets the owner settle and shut down; it must exit 0 by itself. */
async function finish(owner: Owner, command: Omit<Extract<LeaseOwnerCommand, { type: 'finish' }>, 'type'> = {}): Promise<Extract<LeaseOwnerMessage, { type: 'settled' }>> {
	owner.send({ type: 'finish', ...command });
	const settled = await owner.next('settled', undefined, 60_000);
	await owner.next('shut-down', undefined, 20_000);
	const exit = await Promise.race([owner.exited, sleep(20_000).then(() => 'timeout' as const)]);
	expect(exit, `${owner.name} exits by itself after its shutdown\n${owner.output}`).toEqual({ code: 0, signal: null });
	return settled;
}

async function stored(registry: RedisRunRegistry, runIds: readonly string[]): Promise<Run[]> {
	const runs = await registry.getRuns(runIds);
	return runs.map((run, index) => {
		if (run === undefined) throw new Error(`Run ${runIds[index]} is missing from Redis`);
		return run;
	});
}

async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
	const started = performance.now();
	for (;;) {
		if (await check()) return Math.round(performance.now() - started);
		if (performance.now() - started > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(everyMs);
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

const realNow = (): number => performance.timeOrigin + performance.now();
const terminalEvents = (events: readonly RunEvent[], runId: string): RunEvent[] => events.filter((event) => event.runId === runId && TERMINAL.has(event.event));
const summary = (runs: readonly Run[]): string => {
	const counts = new Map<string, number>();
	for (const run of runs) {
		const key = run.status === 'failed' ? `failed ${run.error?.name}` : run.status;
		counts.set(key, (counts.get(key) ?? 0) + 1);
	}
	return [...counts].map(([key, count]) => `${count} ${key}`).join(', ');
};

/** A stored run is one terminal state, whole: FAILED OwnerLostError without a result, or COMPLETED with its result and no error. */
function expectOneWholeTerminalState(run: Run): void {
	expect(TERMINAL.has(run.status), `${run.runId} is terminal (${run.status})`).toBe(true);
	if (run.status === 'failed') {
		expect(run.error?.name, run.runId).toBe('OwnerLostError');
		expect(run.result, run.runId).toBeUndefined();
	} else {
		expect(run.status, run.runId).toBe('completed');
		expect(run.error, run.runId).toBeUndefined();
		expect(run.result, run.runId).toMatchObject({ index: (run.parameters as { index: number }).index });
	}
	expect(run.completedAt).toBeTypeOf('number');
}

describe.skipIf(redisUrl === null)('owner faults: blocked event loop, skewed clocks, aggressive reapers (owners in child processes)', () => {
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});
	afterEach(async () => {
		const fatal = await killAll(owners);
		await Promise.all(managers.splice(0).map((manager) => manager.shutdown({ graceMs: 0, abortGraceMs: 100 })));
		expect(fatal, 'no owner process had an unhandled rejection or uncaught exception').toEqual([]);
	});

	describe('(a) a task blocks its owner\'s event loop past the lease TTL', () => {
		const ttlMs = 1_000;
		const blockMs = 2_000;
		const watchMs = 2_000;
		// What must not change once a run is terminal (progress and updatedAt of a running one may).
		const essence = (run: Run): unknown => ({ runId: run.runId, status: run.status, error: run.error, result: run.result, completedAt: run.completedAt });

		/**
		 * `blocker-0` busy-waits `blockMs` when told and returns its result in the same macrotask;
		 * with `tails`, 5 runs complete in the first timer phase after the block (before any
		 * heartbeat or reconcile); 10 `bystander` runs never end by themselves (progress every 50 ms).
		 */
		async function blockScenario(label: string, options: { readonly externalReaper: boolean; readonly tails: boolean }): Promise<void> {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			if (options.externalReaper) otherInstance(prefix, { ownerLease: { ttlMs, reapIntervalMs: 100 } });
			const owner = startOwner({
				prefix,
				instanceId: 'owner-block',
				// With no other instance, the owner's own reaper is the only one.
				ownerLease: options.externalReaper ? { ttlMs } : { ttlMs, reapIntervalMs: 100 },
				reconcileIntervalMs: 200,
				progressThrottleMs: 0,
				groups: [
					{ idPrefix: 'blocker', count: 1, moduleId: 'block', behaviour: { kind: 'blocker' } },
					...(options.tails ? [{ idPrefix: 'tail', count: 5, moduleId: 'block', behaviour: { kind: 'after-block' } } as const] : []),
					{ idPrefix: 'bystander', count: 10, moduleId: 'block', behaviour: { kind: 'until-released', progressEveryMs: 50 } },
				],
			});
			const { runIds } = await owner.next('ready');
			expect(runIds).toHaveLength(options.tails ? 16 : 11);
			expect((await stored(registry, runIds)).every((run) => run.status === 'running' && run.ownerId === 'owner-block')).toBe(true);
			expect(await client.exists(registry.keys.lease('owner-block'))).toBe(1);

			owner.send({ type: 'block', ms: blockMs });
			const begin = await owner.next('block-begin');
			const end = await owner.next('block-end', undefined, blockMs + 20_000);
			expect(end.blockedMs).toBeGreaterThanOrEqual(blockMs);

			// The blocker and the tails end in Redis soon after the block; the bystanders end too if reaped.
			const quick = runIds.filter((runId) => !runId.startsWith('bystander-'));
			const settledMs = await pollUntil('the blocker (and tails) to be terminal in Redis', async () => (await stored(registry, quick)).every((run) => TERMINAL.has(run.status)), 10_000);
			await sleep(300);
			const snapshot = await stored(registry, runIds);

			// Nothing terminal is overwritten afterwards: heartbeats resume, reconciles run every 200 ms,
			// the owner's late writes (progress, completions) hit the compare-and-set.
			const watchUntil = performance.now() + watchMs;
			let reads = 0;
			while (performance.now() < watchUntil) {
				expect((await stored(registry, runIds)).map(essence)).toEqual(snapshot.map(essence));
				reads++;
				await sleep(100);
			}

			// Bystanders still running (their owner renewed its lease before any reap) complete when released.
			owner.send({ type: 'release' });
			// The owner recovered: fresh runs complete normally.
			owner.send({ type: 'start', groups: [{ idPrefix: 'fresh', count: 10, moduleId: 'fresh', behaviour: { kind: 'complete-after', maxMs: 300, progressEveryMs: 50 } }] });
			const fresh = await owner.next('ready', (message) => message.runIds[0] === 'fresh-0');
			const settled = await finish(owner, { waitAll: true, waitAllTimeoutMs: 20_000 });
			expect(settled.waitAll).toEqual({ settled: true, pending: [] });
			for (const run of await stored(registry, fresh.runIds)) expect(run).toMatchObject({ status: 'completed', ownerId: 'owner-block', result: { index: (run.parameters as { index: number }).index } });

			// One whole terminal state per run, the one already stored at the snapshot when there was one.
			const runs = await stored(registry, runIds);
			for (const [index, run] of runs.entries()) {
				expectOneWholeTerminalState(run);
				const before = snapshot[index] as Run;
				if (TERMINAL.has(before.status)) expect(essence(run)).toEqual(essence(before));
			}
			// A reaped bystander was aborted by its owner, which learnt of the reap.
			for (const run of runs.filter((candidate) => candidate.runId.startsWith('bystander-') && candidate.status === 'failed')) {
				expect(settled.events.filter((event) => event.runId === run.runId && event.event === 'aborted')).toMatchObject([{ errorCode: 'ERR_ENDED_ELSEWHERE' }]);
			}
			// Alone, the owner sends the blocker's completion before any of its timers runs after the block: it stands.
			if (!options.externalReaper) expect(runs[0]).toMatchObject({ runId: 'blocker-0', status: 'completed' });
			const reaped = runs.filter((run) => run.status === 'failed');
			const aborts = settled.events.filter((event) => event.event === 'aborted').map((event) => event.realAt);

			// The owner's side: one terminal event per run, and its view and events agree with Redis.
			const disagreements: string[] = [];
			for (const run of runs) {
				const events = terminalEvents(settled.events, run.runId);
				expect(events.length, `terminal events of ${run.runId} in the owner: ${JSON.stringify(events)}`).toBe(1);
				const view = settled.views[run.runId];
				expect({ runId: run.runId, status: view?.status, error: view?.error?.name }).toEqual({ runId: run.runId, status: run.status, error: run.error?.name });
				const [event] = events;
				if (event?.status !== run.status || event.errorName !== run.error?.name) {
					disagreements.push(`${run.runId}: owner emitted "${event?.event}"${event?.hasResult ? ' with a result' : ''}, Redis holds ${run.status}${run.error ? ` ${run.error.name}` : ''}`);
				}
			}
			const outcome = (idPrefix: string): string => summary(runs.filter((run) => run.runId.startsWith(`${idPrefix}-`)));
			console.log(
				`[owner-faults] block (${label}): owner blocked ${Math.round(end.blockedMs)} ms (ttlMs ${ttlMs}); ` +
					(reaped.length > 0 ? `first run reaped ${Math.round(Math.min(...reaped.map((run) => run.completedAt!)) - begin.realAt)} ms after the block began; ` : 'nothing reaped; ') +
					`blocker${options.tails ? ' and tails' : ''} terminal in Redis ${settledMs} ms after the block ended — blocker: ${outcome('blocker')}${options.tails ? `; tails: ${outcome('tail')}` : ''}; bystanders: ${outcome('bystander')}; ` +
					`terminal states unchanged over ${watchMs} ms (${reads} reads); ` +
					(aborts.length > 0 ? `the owner aborted its ${aborts.length} reaped copies within ${Math.round(Math.max(...aborts) - end.realAt)} ms of the block's end; ` : '') +
					`10/10 fresh runs COMPLETED afterwards; owner stats ${JSON.stringify(settled.stats)}; owner terminal events contradicting Redis: ${disagreements.length}${disagreements.length > 0 ? ` (${disagreements.join('; ')})` : ''}`,
			);
			// The owner's events are part of the one state: no listener may have been told "completed" for a run Redis holds FAILED.
			expect(disagreements, 'terminal events of the owner that contradict the stored state').toEqual([]);
		}

		it(`another instance reaps every 100 ms while the owner busy-waits ${blockMs} ms (2 × ttlMs ${ttlMs}): each of 16 runs ends in ONE terminal state (all reaped), unchanged for ${watchMs} ms, and the owner's events agree with it`, async () => {
			await blockScenario('another instance reaps', { externalReaper: true, tails: true });
		}, 60_000);

		it(`no other instance (the owner's own reaper, every 100 ms), the owner busy-waits ${blockMs} ms (2 × ttlMs ${ttlMs}): the blocker's own result stands, the 10 bystanders end in ONE terminal state each (reaped by the owner itself, or completed), and the owner's events agree`, async () => {
			await blockScenario('own reaper only', { externalReaper: false, tails: false });
		}, 60_000);
	});

	describe('(b) an owner whose wall clock is 300 s off', () => {
		const ttlMs = 1_500;
		// Renewed every 250 ms: a stall of the loaded 2-core machine up to 1,250 ms is no real loss either.
		const heartbeatIntervalMs = 250;
		const observeMs = 3 * ttlMs;

		it(`owners at +300 s and −300 s, each 20 long + 30 short runs, reaped every 50 ms by a correct clock for ${observeMs} ms (3 × ttlMs ${ttlMs}): 0 false OwnerLost, 100/100 COMPLETED`, async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			otherInstance(prefix, { ownerLease: { ttlMs, reapIntervalMs: 50 } });
			const groups = (instance: string): LeaseOwnerConfig['groups'] => [
				{ idPrefix: `${instance}-long`, count: 20, moduleId: 'skew', behaviour: { kind: 'until-released', progressEveryMs: 100 } },
				{ idPrefix: `${instance}-short`, count: 30, moduleId: 'skew', behaviour: { kind: 'complete-after', maxMs: observeMs, progressEveryMs: 100 } },
			];
			const skews = [300_000, -300_000] as const;
			const skewed = skews.map((offset) => {
				const instanceId = offset > 0 ? 'ahead' : 'behind';
				return { offset, instanceId, owner: startOwner({ prefix, instanceId, ownerLease: { ttlMs, heartbeatIntervalMs, reapIntervalMs: 100 }, reconcileIntervalMs: 250, groups: groups(instanceId) }, offset) };
			});
			const started = await Promise.all(skewed.map(({ owner }) => owner.next('started')));
			await Promise.all(skewed.map(({ owner }) => owner.next('ready')));
			// The preload works: each child's Date.now() is off by its offset (within the IPC delay).
			const measuredSkews = started.map((message) => message.now - message.realNow);
			for (const [index, { offset }] of skewed.entries()) expect(Math.abs((measuredSkews[index] as number) - offset)).toBeLessThan(1_000);
			const runIds = started.flatMap((message) => message.runIds);
			expect(runIds).toHaveLength(100);

			// Several TTLs under a reaper with a correct clock: no run of theirs is reaped, their leases stay.
			const observeUntil = performance.now() + observeMs;
			let reads = 0;
			let minLeasePttl = Number.POSITIVE_INFINITY;
			const falseLost = new Set<string>();
			while (performance.now() < observeUntil) {
				for (const run of await stored(registry, runIds)) if (run.status === 'failed') falseLost.add(run.runId);
				for (const { instanceId } of skewed) minLeasePttl = Math.min(minLeasePttl, await client.pttl(registry.keys.lease(instanceId)));
				reads++;
				await sleep(50);
			}
			for (const { owner } of skewed) owner.send({ type: 'release' });
			const settled = await Promise.all(skewed.map(({ owner }) => finish(owner, { waitAll: true, waitAllTimeoutMs: 20_000 })));

			const runs = await stored(registry, runIds);
			for (const run of runs) {
				expect(run, run.runId).toMatchObject({ status: 'completed', result: { index: (run.parameters as { index: number }).index } });
				expect(run.error).toBeUndefined();
			}
			// Their own timestamps carry their clocks; updatedAt is Redis' (never moved back).
			const createdSkew = skewed.map(({ instanceId }, index) => {
				const own = runs.filter((run) => run.ownerId === instanceId);
				return Math.round(Math.max(...own.map((run) => run.createdAt)) - (started[index] as { realNow: number }).realNow);
			});
			const events = settled.flatMap((message) => message.events);
			const lostEvents = events.filter((event) => event.errorName === 'OwnerLostError' || event.event === 'failed' || event.event === 'aborted');
			console.log(
				`[owner-faults] clock skew: owners at ${measuredSkews.map((skew) => `${skew > 0 ? '+' : ''}${Math.round(skew)} ms`).join(' and ')}; over ${observeMs} ms (${reads} reads, ${observeMs / ttlMs} × ttlMs ${ttlMs}, reaper every 50 ms) ` +
					`${falseLost.size}/100 false OwnerLost, lowest lease PTTL seen ${minLeasePttl} ms (heartbeat every ${heartbeatIntervalMs} ms); then ${summary(runs)}; createdAt (the owners' clocks) off the real time of their start by ${createdSkew.map((skew) => `${skew > 0 ? '+' : ''}${skew}`).join(' / ')} ms; ` +
					`heartbeats ${settled.map((message) => message.heartbeats).join(' / ')}; max event-loop lag ${settled.map((message) => message.maxLagMs).join(' / ')} ms`,
			);
			expect([...falseLost]).toEqual([]);
			expect(minLeasePttl).toBeGreaterThan(0);
			expect(lostEvents).toEqual([]);
			for (const message of settled) expect(message.stats).toMatchObject({ completed: 50, failed: 0, cancelled: 0 });
		}, 60_000);

		// Documented (docs/reliability.md, docs/redis.md): retention, like the contract's cleanupOldRuns,
		// judges a run's age by its completedAt, which the owner's clock sets. Leases use Redis' clock;
		// retention cannot without dropping the caller's completedAt. Keep instance clocks in sync.
		it('retention judges age by completedAt, the owner\'s clock: the 10 runs a −300 s owner has just COMPLETED count as 300 s old and go at the first sweep (maxAgeMs 120 s)', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const owner = startOwner(
				{ prefix, instanceId: 'behind', ownerLease: { ttlMs: 1_000 }, groups: [{ idPrefix: 'done', count: 10, moduleId: 'skew', behaviour: { kind: 'complete-after', ms: 50 } }] },
				-300_000,
			);
			const { runIds } = await owner.next('ready');
			await finish(owner, { waitAll: true, waitAllTimeoutMs: 10_000 });
			const done = await stored(registry, runIds);
			expect(done.every((run) => run.status === 'completed')).toBe(true);
			// Their end as the owner's clock tells it (completedAt) and as Redis' clock does (updatedAt, never moved back: the owner's is behind).
			const ownerSaysAgoMs = Math.round(realNow() - Math.max(...done.map((run) => run.completedAt!)));
			const redisSaysAgoMs = Math.round(realNow() - Math.max(...done.map((run) => run.updatedAt)));

			// Then an instance with a correct clock sweeps: ten sweeps, and runs that ended a second ago are 119 s short of the retention age.
			otherInstance(prefix, { retention: { maxAgeMs: 120_000, sweepIntervalMs: 100 } });
			await sleep(1_000);
			const kept = (await registry.getRuns(runIds)).filter((run) => run?.status === 'completed');
			console.log(
				`[owner-faults] clock skew and retention: ${kept.length}/10 runs a −300 s owner completed about a second ago are left in Redis after 10 sweeps (maxAgeMs 120 000); ` +
					`they ended ${redisSaysAgoMs} ms ago by Redis' clock (updatedAt) but ${ownerSaysAgoMs} ms ago by the owner's (completedAt), which scores {p}:idx:ended`,
			);
			expect(ownerSaysAgoMs).toBeGreaterThan(120_000);
			expect(redisSaysAgoMs).toBeLessThan(120_000);
			expect(kept).toHaveLength(0);
		}, 30_000);
	});

	it('(c) 100 concurrent runs, ttlMs 1000 (heartbeat every 200 ms), reapOrphans every ~5 ms from this process plus the owner\'s own reaper every 20 ms, for 6 TTLs: 0 false OwnerLost, 100/100 COMPLETED', async () => {
		const ttlMs = 1_000;
		const windowMs = 6 * ttlMs;
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix });
		const owner = startOwner({
			prefix,
			instanceId: 'owner-100',
			// Renewed every 200 ms: a stall of the loaded 2-core machine up to 800 ms is no real loss either.
			ownerLease: { ttlMs, heartbeatIntervalMs: 200, reapIntervalMs: 20 },
			reconcileIntervalMs: 250,
			progressThrottleMs: 50,
			groups: [
				// Half end at random moments of the window, half only when released after it.
				{ idPrefix: 'run', count: 50, moduleId: 'busy', behaviour: { kind: 'complete-after', maxMs: windowMs, progressEveryMs: 20 } },
				{ idPrefix: 'long', count: 50, moduleId: 'busy', behaviour: { kind: 'until-released', progressEveryMs: 20 } },
			],
		});
		const { runIds } = await owner.next('ready');
		expect(runIds).toHaveLength(100);
		const windowStart = realNow();

		// A reaper that hardly rests: reapOrphans, 5 ms, reapOrphans… (back to back would only starve the 2 cores).
		const windowEnd = performance.now() + windowMs;
		const reaped: string[] = [];
		let reapCalls = 0;
		const reaper = (async () => {
			while (performance.now() < windowEnd) {
				reaped.push(...(await registry.reapOrphans()));
				reapCalls++;
				await sleep(5);
			}
		})();
		const falseLost = new Set<string>();
		let reads = 0;
		while (performance.now() < windowEnd) {
			for (const run of await stored(registry, runIds)) if (run.status === 'failed') falseLost.add(run.runId);
			reads++;
			await sleep(100);
		}
		await reaper;
		owner.send({ type: 'release' });
		const settled = await finish(owner, { waitAll: true, waitAllTimeoutMs: 20_000 });
		const runs = await stored(registry, runIds);
		const windowLags = settled.lags.filter((lag) => lag.realAt >= windowStart && lag.realAt <= windowStart + windowMs);
		const maxWindowLagMs = Math.max(0, ...windowLags.map((lag) => lag.lagMs));
		const marginMs = ttlMs - 200;
		console.log(
			`[owner-faults] aggressive reapers: ${reapCalls} reapOrphans calls from this process over ${windowMs} ms (+ the owner's own every 20 ms), ttlMs ${ttlMs}, ` +
				`${settled.heartbeats} heartbeats; ${reaped.length} runs reaped, ${falseLost.size} seen FAILED in ${reads} reads; then ${summary(runs)}; ` +
				`owner's max event-loop lag ${maxWindowLagMs} ms in the window (${settled.maxLagMs} ms overall; the lease survives stalls up to ${marginMs} ms)`,
		);
		// A stall of the owner beyond the margin would make a loss real, not false: the message says so.
		const why = `runs reaped while the owner lived (its longest stall: ${maxWindowLagMs} ms; above ${marginMs} ms the loss would be real)`;
		expect(reaped, why).toEqual([]);
		expect([...falseLost], why).toEqual([]);
		for (const run of runs) expect(run, run.runId).toMatchObject({ status: 'completed', result: { index: (run.parameters as { index: number }).index } });
		expect(settled.stats).toMatchObject({ completed: 100, failed: 0, cancelled: 0 });
		expect(settled.events.filter((event) => event.event === 'aborted' || event.event === 'failed')).toEqual([]);
		expect(reapCalls).toBeGreaterThan(100);
	}, 60_000);
});

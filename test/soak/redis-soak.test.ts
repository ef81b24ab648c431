/**
 * Soak on Redis: the same 100,000 runs as soak.test.ts (20,000 under `npm test`), through one
 * manager with an instance id, a lease and the Redis bus, into a RedisRunRegistry whose finished
 * runs expire after `terminalTtlMs`. Redis is the test server of test/redis/setup.ts (the soak
 * project's global setup), under a prefix of its own.
 *
 * Checked at 10 % and at the end: the keys under the prefix (right after the batches: the run
 * hashes are at most the runs that ended within the TTL, plus the active ones, plus a constant
 * number of index keys; once the TTL has passed and the expired index entries are purged: no run
 * hash and no index entry left), and, as for the memory registry, heap after GC, listeners of the
 * process, the manager and the client, and the process's handles.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { BackgroundTaskManager, RunStatus } from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry, type RedisKeys } from '../../src/redis/index.js';
import { connect, redisUrl, scanKeys, uniquePrefix } from '../redis/support.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import {
	BATCH,
	CHECKPOINT,
	HEAP_TOLERANCE,
	HEAP_WINDOW,
	TOTAL,
	countOutcomes,
	counts,
	expectNoGrowth,
	expectedOutcomes,
	fmt,
	heapFigure,
	inHeapWindow,
	listenerCounts,
	mb,
	runBatch,
	settledHeapUsed,
	snapshot,
	type Snapshot,
} from './soak-support.js';

/** Finished runs expire this long after they ended. */
const TTL_MS = 1_000;
/** Clock and scheduling slack for "ended within the TTL" (Redis and this process share the host's clock). */
const TTL_SLACK_MS = 250;
/**
 * Index keys besides the run hashes: all, ended, expiry, expiry-info, three terminal statuses,
 * four modules, ten items, one owner index, the lease — 23 — with room to spare.
 */
const MAX_INDEX_KEYS = 32;

interface Census {
	/** Run hashes (`{p}:run:*`) found by SCAN (which does not return expired keys). */
	readonly runKeys: number;
	/** Every other key of the prefix. */
	readonly otherKeys: string[];
	/** Members of the five `{p}:idx:status:*` (every run is in one), `{p}:idx:expiry` and fields of `{p}:idx:expiry-info`. */
	readonly indexed: number;
	readonly expiring: number;
	readonly expiryInfo: number;
	readonly usedMemory: number;
}

async function census(client: Redis, keys: RedisKeys): Promise<Census> {
	const all = await scanKeys(client, keys.prefix);
	const runPrefix = keys.run('');
	const info = await client.info('memory');
	return {
		runKeys: all.filter((key) => key.startsWith(runPrefix)).length,
		otherKeys: all.filter((key) => !key.startsWith(runPrefix)),
		indexed: (await Promise.all(Object.values(RunStatus).map((status) => client.zcard(keys.status(status))))).reduce((sum, n) => sum + n, 0),
		expiring: await client.zcard(keys.expiry),
		expiryInfo: await client.hlen(keys.expiryInfo),
		usedMemory: Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN),
	};
}

describe.skipIf(redisUrl === null)('soak: RedisRunRegistry', () => {
	failOnUnhandledErrorsAfterEach();

	it(`${fmt(TOTAL)} runs (50 % complete, 30 % throw, 20 % cancelled) with terminalTtlMs ${fmt(TTL_MS)}: keys within the runs of the last TTL + active + ${MAX_INDEX_KEYS}, none left after the TTL; peak heap after GC over the last ${fmt(HEAP_WINDOW)} runs at ${fmt(TOTAL)} within ${Math.round(HEAP_TOLERANCE * 100)} % of that at ${fmt(CHECKPOINT)}; listeners and handles unchanged`, async () => {
		const client = connect();
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix, terminalTtlMs: TTL_MS });
		const { keys } = registry;
		const bus = new RedisCancellationBus({ client, prefix });
		const manager = new BackgroundTaskManager(registry, {
			concurrency: 200,
			instanceId: 'soak-1',
			bus,
			ownerLease: { ttlMs: 30_000 },
		});
		const outcomes = countOutcomes(manager);
		// When each batch was done (every run of it settled and written): no state per run is kept.
		const batchesDone: Array<{ readonly at: number; readonly runs: number }> = [];
		const startedAt = performance.now();

		interface Checkpoint {
			readonly busy: Census;
			readonly busyBound: number;
			readonly quiet: Census;
			readonly purgeCalls: number;
			readonly snapshot: Snapshot;
			readonly clientListeners: Record<string, number>;
		}

		const heapSamples: number[] = [];
		const checkpoint = async (runs: number): Promise<Checkpoint> => {
			// Right after the batches: what has not expired yet is at most what ended within the TTL.
			const scanStartedAt = Date.now();
			const busy = await census(client, keys);
			const recent = batchesDone.filter((batch) => batch.at > scanStartedAt - TTL_MS - TTL_SLACK_MS).reduce((sum, batch) => sum + batch.runs, 0);
			const busyBound = recent + manager.getActiveTaskCount();

			// Once the TTL has passed, every run has expired; the scripts purge their index entries
			// lazily, 1,000 per call, in every call that writes or lists: list until nothing is left.
			await new Promise((resolve) => setTimeout(resolve, TTL_MS + TTL_SLACK_MS));
			let purgeCalls = 0;
			while (purgeCalls < 1_000) {
				await registry.listRuns({ limit: 1 });
				purgeCalls++;
				if ((await client.zcard(keys.expiry)) === 0) break;
			}
			const quiet = await census(client, keys);
			return {
				busy,
				busyBound,
				quiet,
				purgeCalls,
				snapshot: await snapshot(manager, runs, heapSamples.splice(0)),
				clientListeners: listenerCounts(client as unknown as Parameters<typeof listenerCounts>[0]),
			};
		};

		let first: Checkpoint | undefined;
		try {
			for (let start = 0; start < TOTAL; start += BATCH) {
				await runBatch(manager, start, BATCH);
				const done = start + BATCH;
				batchesDone.push({ at: Date.now(), runs: BATCH });
				if (done === CHECKPOINT) first = await checkpoint(CHECKPOINT);
				else if (done !== TOTAL && (inHeapWindow(done, CHECKPOINT) || inHeapWindow(done, TOTAL))) {
					await manager.flush();
					heapSamples.push(await settledHeapUsed());
				}
			}
			const seconds = (performance.now() - startedAt) / 1000;
			const last = await checkpoint(TOTAL);
			if (first === undefined) throw new Error('no checkpoint snapshot');
			const expected = expectedOutcomes(TOTAL);

			const describeCheckpoint = (at: Checkpoint): string =>
				`${fmt(at.snapshot.runs)}: ${fmt(at.busy.runKeys)} run keys + ${at.busy.otherKeys.length} other keys (bound ${fmt(at.busyBound)} + ${MAX_INDEX_KEYS}), ` +
				`after the TTL ${at.quiet.runKeys} + ${at.quiet.otherKeys.length} (${at.purgeCalls} purging calls), used_memory ${mb(at.quiet.usedMemory)}`;
			console.log(
				`soak redis: ${fmt(TOTAL)} runs in ${seconds.toFixed(1)} s (${fmt(Math.round(TOTAL / seconds))}/s, checkpoint pauses included): ` +
					`${fmt(outcomes.completed)} completed, ${fmt(outcomes.failed)} failed, ${fmt(outcomes.cancelled)} cancelled, ${outcomes.errors} error events; ` +
					`${heapFigure(first.snapshot, last.snapshot)}; ` +
					`keys at ${describeCheckpoint(first)}; at ${describeCheckpoint(last)}; ` +
					`process listeners ${counts(first.snapshot.processListeners)} → ${counts(last.snapshot.processListeners)}; ` +
					`manager listeners ${counts(first.snapshot.managerListeners)} → ${counts(last.snapshot.managerListeners)}; ` +
					`client listeners ${counts(first.clientListeners)} → ${counts(last.clientListeners)}; ` +
					`active resources ${counts(first.snapshot.resources)} → ${counts(last.snapshot.resources)}`,
			);

			expect.soft({ completed: outcomes.completed, failed: outcomes.failed, cancelled: outcomes.cancelled }, 'terminal events').toEqual(expected);
			expect.soft(outcomes.firstErrors, 'error events').toEqual([]);
			expect.soft(manager.getStats(), 'manager counts').toMatchObject({ ...expected, queued: 0, running: 0, draining: 0, pendingWrites: 0 });
			for (const at of [first, last]) {
				const label = `at ${fmt(at.snapshot.runs)} runs`;
				expect.soft(at.busy.runKeys, `run keys ${label}, right after the batches: at most the runs that ended within the TTL + active`).toBeLessThanOrEqual(at.busyBound);
				expect.soft(at.busy.otherKeys.length, `index keys ${label}`).toBeLessThanOrEqual(MAX_INDEX_KEYS);
				expect.soft(at.busy.indexed, `members of the status indexes ${label}: at most one per run key not yet purged`).toBeLessThanOrEqual(at.busyBound + 1_000 * 4);
				expect.soft(
					{ runKeys: at.quiet.runKeys, indexed: at.quiet.indexed, expiring: at.quiet.expiring, expiryInfo: at.quiet.expiryInfo },
					`${label}, once the TTL passed and the expired entries were purged`,
				).toEqual({ runKeys: 0, indexed: 0, expiring: 0, expiryInfo: 0 });
			}
			// Once quiet, the same keys are left at both checkpoints (the lease, nothing per run).
			expect.soft(last.quiet.otherKeys, 'keys left once quiet').toEqual(first.quiet.otherKeys);
			expect.soft(last.clientListeners, 'listeners on the ioredis client').toEqual(first.clientListeners);
			expectNoGrowth(first.snapshot, last.snapshot);
		} finally {
			await manager.shutdown({ graceMs: 0 });
			await bus.close();
			await client.quit();
		}
	});
});

/**
 * Two BackgroundTaskManager instances on one Redis (registry and bus under one prefix), as two
 * processes would be: a cancel issued on one aborts the task running on the other through the
 * Redis bus, and the runs of an instance that stopped renewing its lease are failed by the other.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BackgroundTaskManager, CancelledError } from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry, redisKeys } from '../../src/redis/index.js';
import { connect, eventually, redisUrl, uniquePrefix } from './support.js';

let client: Redis;

describe.skipIf(redisUrl === null)('BackgroundTaskManager on Redis', () => {
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	it('a cancel on one instance aborts the task running on the other, through the Redis bus', async () => {
		const prefix = uniquePrefix();
		const node = (instanceId: string) =>
			new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), {
				instanceId,
				bus: new RedisCancellationBus({ client, prefix }),
				// Far away: whatever aborts the task in this test, the bus did it.
				reconcileIntervalMs: 600_000,
			});
		const a = node('instance-a');
		const b = node('instance-b');
		try {
			let aborted: unknown;
			let started = false;
			const runId = a.startTask({ moduleId: 'render', itemId: 'chat-1' }, async ({ signal }) => {
				started = true;
				await new Promise<void>((_, reject) => {
					signal.addEventListener('abort', () => {
						aborted = signal.reason;
						reject(signal.reason as Error);
					});
				});
			});
			await eventually('the run to be running in Redis', async () => started && (await b.getRun(runId))?.status === 'running');
			// Pub/sub is at most once: both subscriber connections must be up before the cancel is published.
			const channel = redisKeys(prefix).cancelChannel;
			await eventually('both instances to listen on the cancel channel', async () => ((await client.pubsub('NUMSUB', channel)) as [string, number])[1] >= 2);
			expect(await b.cancelTask(runId, 'user pressed stop')).toBe(true);
			await eventually('the task on instance a to be aborted', () => aborted !== undefined);
			expect(aborted).toBeInstanceOf(CancelledError);
			await a.flush();
			expect(await b.getRun(runId)).toMatchObject({ status: 'cancelled', ownerId: 'instance-a' });
		} finally {
			await a.shutdown({ graceMs: 1_000 });
			await b.shutdown({ graceMs: 1_000 });
		}
	});

	it('fails the runs of an instance whose lease lapsed, on Redis time', async () => {
		const prefix = uniquePrefix();
		const registry = new RedisRunRegistry({ client, prefix });
		// An instance that crashed: its run is stored RUNNING and its lease is not renewed.
		await registry.heartbeat('crashed', 100);
		await registry.addRun({ runId: 'orphan', moduleId: 'm', status: 'running', priority: 'normal', parameters: null, createdAt: Date.now(), updatedAt: Date.now(), startedAt: Date.now(), ownerId: 'crashed' });
		const survivor = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix }), {
			instanceId: 'survivor',
			ownerLease: { ttlMs: 300, reapIntervalMs: 50 },
		});
		try {
			await eventually('the orphan to be reaped', async () => (await registry.getRun('orphan'))?.status === 'failed');
			expect(await registry.getRun('orphan')).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' }, ownerId: 'crashed' });
			expect(await client.exists(`${prefix}:owner:survivor`)).toBe(1);
		} finally {
			await survivor.shutdown({ graceMs: 1_000 });
		}
		expect(await client.exists(`${prefix}:owner:survivor`)).toBe(0);
	});
});

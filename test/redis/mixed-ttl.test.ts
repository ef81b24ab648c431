/**
 * Registries with and without `terminalTtlMs` on one prefix: a run id that expired under the one
 * with a TTL and is then reused by the one without must keep all its index entries.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Run } from '../../src/index.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import { connect, redisUrl, uniquePrefix } from './support.js';

let client: Redis;

describe.skipIf(redisUrl === null)('registries with and without a TTL on one prefix', () => {
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	it('keeps a reused id listed after the TTL registry purges the expired run of that id', async () => {
		const prefix = uniquePrefix();
		const expiring = new RedisRunRegistry({ client, prefix, terminalTtlMs: 50 });
		const lasting = new RedisRunRegistry({ client, prefix });
		const now = Date.now();
		const run = (status: Run['status']): Run => ({
			runId: 'reused',
			moduleId: 'export',
			status,
			priority: 'normal',
			parameters: {},
			createdAt: now,
			updatedAt: now,
			...(status === 'completed' ? { startedAt: now, completedAt: now, result: 1 } : {}),
		});

		await expiring.addRun(run('completed'));
		await new Promise((resolve) => setTimeout(resolve, 150));
		expect(await lasting.getRun('reused')).toBeUndefined();

		await lasting.addRun(run('queued'));
		// Any write or list of the TTL registry purges expired entries: the new run must survive it.
		expect((await expiring.listRuns({ status: 'queued' })).runs.map((stored) => stored.runId)).toEqual(['reused']);
		expect((await expiring.listRuns({ moduleId: 'export' })).runs.map((stored) => stored.runId)).toEqual(['reused']);
		expect(await lasting.updateRun('reused', { status: 'running', startedAt: now }, { ifStatus: 'queued' })).toMatchObject({ status: 'running' });
		expect((await lasting.listRuns({ status: 'running' })).runs.map((stored) => stored.runId)).toEqual(['reused']);
	});
});

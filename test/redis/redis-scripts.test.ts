/**
 * How RedisRunRegistry runs its scripts, on a redis-server of this file's own (it flushes the
 * server's functions and scripts, and changes its ACL users): as one function library, loaded on
 * first use and again when the server lost it; and as EVAL scripts where an ACL refuses functions
 * — there, the whole conformance suite too.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RedisRunRegistry } from '../../src/redis/index.js';
import { LIBRARY, SCRIPTS } from '../../src/redis/scripts.js';
import { describeRunRegistryConformance } from '../../src/testing/index.js';
import { RedisServer } from '../support/redis-server.js';
import { makeRun, redisUrl, uniquePrefix } from './support.js';

describe.skipIf(redisUrl === null)('RedisRunRegistry scripts', () => {
	let server: RedisServer;
	let client: Redis;
	// A client whose ACL user may not call FCALL: the registry must fall back to EVAL.
	let evalOnly: Redis;
	const connect = (options: { username?: string; password?: string } = {}): Redis => new Redis(server.url, { maxRetriesPerRequest: 3, ...options });

	/** How many FUNCTION LOADs the server has run. */
	async function functionLoads(): Promise<number> {
		return Number(/^cmdstat_function\|load:calls=(\d+)/m.exec(await client.info('commandstats'))?.[1] ?? 0);
	}

	beforeAll(async () => {
		server = await RedisServer.started();
		client = connect();
		await client.acl('SETUSER', 'runledger-eval-only', 'reset', 'on', 'nopass', '~*', '&*', '+@all', '-fcall');
		evalOnly = connect({ username: 'runledger-eval-only', password: 'any' });
	});
	afterAll(async () => {
		await evalOnly.quit();
		await client.quit();
		await server.destroy();
	});

	describeRunRegistryConformance({ describe, it, expect }, () => new RedisRunRegistry({ client: evalOnly, prefix: uniquePrefix() }), {
		name: 'RedisRunRegistry by EVAL (an ACL refuses FCALL)',
		batchRead: true,
		leases: true,
	});

		it('loads its function library on first use and again after FUNCTION FLUSH, and passes its answers through as before', async () => {
			await client.call('FUNCTION', 'FLUSH');
			await client.script('FLUSH');
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const run = makeRun();
			await registry.addRun(run);
			expect(await client.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY.name)).toHaveLength(1);
			await client.call('FUNCTION', 'FLUSH');
			expect(await registry.updateRun(run.runId, { status: 'running' })).toMatchObject({ status: 'running' });
			expect((await registry.listRuns()).runs).toHaveLength(1);
			expect(await client.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY.name)).toHaveLength(1);
			await client.call('FUNCTION', 'FLUSH');
			await expect(registry.addRun(run)).rejects.toMatchObject({ name: 'RunExistsError' });
			await expect(registry.updateRun(run.runId, { status: 'queued' })).rejects.toMatchObject({ name: 'IllegalTransitionError', from: 'running', to: 'queued' });
			// Redis had never run them by EVAL.
			expect(await client.script('EXISTS', SCRIPTS.addRun.sha, SCRIPTS.updateRun.sha)).toEqual([0, 0]);
		});

		it('loads the library once for calls that miss it together', async () => {
			await client.call('FUNCTION', 'FLUSH');
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const runs = Array.from({ length: 20 }, () => makeRun());
			const loadsBefore = await functionLoads();
			await Promise.all(runs.map((run) => registry.addRun(run)));
			expect((await functionLoads()) - loadsBefore).toBe(1);
			expect((await registry.listRuns({ limit: 100 })).runs).toHaveLength(20);
		});

		it('fails a call that cannot load the library for a passing reason (out of memory), and loads it with a later call', async () => {
			await client.call('FUNCTION', 'FLUSH');
			await client.script('FLUSH');
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			const run = makeRun();
			await client.config('SET', 'maxmemory', '1');
			try {
				await expect(registry.addRun(run)).rejects.toThrow(/^OOM/);
			} finally {
				await client.config('SET', 'maxmemory', '0');
			}
			await registry.addRun(run);
			expect(await registry.getRun(run.runId)).toMatchObject({ status: 'queued' });
			// Still by FCALL: the library is there, and nothing went by EVAL.
			expect(await client.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY.name)).toHaveLength(1);
			expect(await client.script('EXISTS', SCRIPTS.addRun.sha)).toEqual([0]);
		});

		for (const refused of ['fcall', 'function'] as const) {
			it(`runs its scripts by EVAL where an ACL refuses ${refused.toUpperCase()}, the whole lifecycle included`, async () => {
				const username = `runledger-no-${refused}`;
				await client.acl('SETUSER', username, 'reset', 'on', 'nopass', '~*', '&*', '+@all', `-${refused}`);
				await client.call('FUNCTION', 'FLUSH');
				await client.script('FLUSH');
				const limited = connect({ username, password: 'any' });
				try {
					const registry = new RedisRunRegistry({ client: limited, prefix: uniquePrefix() });
					const [kept, batched] = [makeRun({ ownerId: 'o' }), makeRun()];
					await registry.addRun(kept);
					expect(await registry.updateRun(kept.runId, { status: 'running' }, { ifStatus: 'queued' })).toMatchObject({ status: 'running', ownerId: 'o' });
					expect(await registry.applyWrites([{ type: 'add', run: batched }, { type: 'update', runId: batched.runId, ifStatus: 'queued', patch: { status: 'cancelled' } }])).toEqual([
						{ outcome: 'applied' },
						{ outcome: 'applied' },
					]);
					expect((await registry.listRuns({ status: ['running', 'cancelled'] })).runs.map((run) => run.runId).sort()).toEqual([kept.runId, batched.runId].sort());
					expect(await registry.reapOrphans()).toEqual([kept.runId]);
					expect(await registry.deleteRun(batched.runId)).toBe(true);
					// Went by EVAL, which cached them; no library was loaded.
					expect(await client.script('EXISTS', SCRIPTS.addRun.sha, SCRIPTS.updateRun.sha, SCRIPTS.applyWrites.sha, SCRIPTS.listRuns.sha)).toEqual([1, 1, 1, 1]);
					expect(await client.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY.name)).toEqual([]);
				} finally {
					await limited.quit();
					await client.acl('DELUSER', username);
				}
			});
		}
});

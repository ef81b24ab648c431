/**
 * The maxmemory-policy check of RedisRunRegistry, against a redis-server of this file's own (its
 * policy is changed here): one process warning per registry when Redis may evict keys, none with
 * `noeviction`, none when CONFIG is refused or the check is off, and never a failed or unhandled call.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { RedisRunRegistry } from '../../src/redis/index.js';
import type { Run } from '../../src/run.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { RedisServer } from '../support/redis-server.js';
import { eventually, redisUrl, uniquePrefix } from './support.js';

const T0 = 1_700_000_000_000;
let counter = 0;
const makeRun = (): Run => ({ runId: `run-${++counter}`, moduleId: 'mod', status: 'queued', priority: 'normal', parameters: {}, createdAt: T0, updatedAt: T0 });

const CODE = 'RUNLEDGER_MAXMEMORY_POLICY';

describe.skipIf(redisUrl === null)('RedisRunRegistry maxmemory-policy check', () => {
	failOnUnhandledErrorsAfterEach();
	let server: RedisServer;
	let admin: Redis;
	const clients: Redis[] = [];
	const warnings: Error[] = [];
	const onWarning = (warning: Error): void => {
		if ((warning as { code?: unknown }).code === CODE) warnings.push(warning);
	};

	const client = (options: RedisOptions = {}): Redis => {
		const created = new Redis(server.url, { maxRetriesPerRequest: 3, ...options });
		created.on('error', () => undefined);
		clients.push(created);
		return created;
	};

	// How many CONFIG GET the server has run since the last reset.
	const configGets = async (): Promise<number> => Number(/^cmdstat_config\|get:calls=(\d+)/m.exec(await admin.info('commandstats'))?.[1] ?? 0);

	// Several calls of every kind, some at once.
	const exercise = async (registry: RedisRunRegistry): Promise<void> => {
		const run = makeRun();
		await Promise.all([registry.addRun(run), registry.listRuns(), registry.getRun('nothing'), registry.heartbeat('owner', 60_000)]);
		await registry.updateRun(run.runId, { status: 'running' });
		await registry.applyWrites([{ type: 'update', runId: run.runId, ifStatus: 'running', patch: { progress: { percent: 1 } } }]);
		await registry.getRuns([run.runId]);
		await registry.cleanupOldRuns(60_000);
		await registry.deleteRun(run.runId);
	};

	beforeAll(async () => {
		server = await RedisServer.started();
		admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
		process.on('warning', onWarning);
	});
	afterEach(async () => {
		await admin.config('SET', 'maxmemory-policy', 'noeviction');
		await admin.config('RESETSTAT');
		warnings.length = 0;
		for (const created of clients.splice(0)) created.disconnect();
	});
	afterAll(async () => {
		process.off('warning', onWarning);
		await admin.quit();
		await server.destroy();
	});

	it('warns once per registry when the policy evicts keys, however many calls it makes', async () => {
		await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
		const shared = client();
		const registry = new RedisRunRegistry({ client: shared, prefix: uniquePrefix() });
		await exercise(registry);
		await exercise(registry);
		await eventually('the warning', () => warnings.length > 0);
		await exercise(registry);
		// Room for a second warning to arrive, were there one.
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(warnings).toHaveLength(1);
		expect(warnings[0]?.message).toContain('allkeys-lru');
		expect(warnings[0]?.message).toContain('noeviction');
		expect(warnings[0]?.name).toBe('Warning');
		expect(await configGets()).toBe(1);

		// Another registry checks for itself.
		const other = new RedisRunRegistry({ client: shared, prefix: uniquePrefix() });
		await exercise(other);
		await eventually('the second registry to warn', () => warnings.length === 2);
		await admin.config('SET', 'maxmemory-policy', 'volatile-ttl');
		const third = new RedisRunRegistry({ client: shared, prefix: uniquePrefix() });
		await third.getRun('x');
		await eventually('the third registry to warn', () => warnings.length === 3);
		expect(warnings[2]?.message).toContain('volatile-ttl');
	});

	it('says nothing with noeviction', async () => {
		const registry = new RedisRunRegistry({ client: client(), prefix: uniquePrefix() });
		await exercise(registry);
		await eventually('the check to run', async () => (await configGets()) === 1);
		await exercise(registry);
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(warnings).toEqual([]);
		expect(await configGets()).toBe(1);
	});

	it('sends no CONFIG with checkMaxmemoryPolicy: false', async () => {
		await admin.config('SET', 'maxmemory-policy', 'allkeys-random');
		const registry = new RedisRunRegistry({ client: client(), prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
		await exercise(registry);
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(warnings).toEqual([]);
		expect(await configGets()).toBe(0);
		expect(() => new RedisRunRegistry({ client: client(), checkMaxmemoryPolicy: 'no' as unknown as boolean })).toThrow(
			expect.objectContaining({ name: 'ValidationError', field: 'checkMaxmemoryPolicy' }),
		);
	});

	it('stays silent, and every call works, when an ACL refuses CONFIG', async () => {
		await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
		const user = `limited-${counter++}`;
		await admin.acl('SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-config');
		try {
			const limited = client({ username: user, password: 'secret' });
			const registry = new RedisRunRegistry({ client: limited, prefix: uniquePrefix() });
			await exercise(registry);
			await eventually('the refused CONFIG to be logged', async () => ((await admin.call('ACL', 'LOG')) as unknown[]).length > 0);
			await exercise(registry);
			await new Promise((resolve) => setTimeout(resolve, 200));
			expect(warnings).toEqual([]);
			// Refused once: a refusal is final, not retried.
			const log = (await admin.call('ACL', 'LOG')) as unknown[][];
			expect(log.filter((entry) => entry.includes('config|get'))).toHaveLength(1);
		} finally {
			await admin.acl('DELUSER', user);
			await admin.call('ACL', 'LOG', 'RESET');
		}
	});

	it('never fails a call for the check: with Redis down at first, the warning comes once it answers', async () => {
		await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
		const down = await RedisServer.create();
		const offline = new Redis(down.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 20, lazyConnect: true });
		offline.on('error', () => undefined);
		clients.push(offline);
		try {
			const registry = new RedisRunRegistry({ client: offline, prefix: uniquePrefix() });
			// No connection: the calls fail as they would anyway, and so does the check, unhandled nowhere.
			await expect(registry.getRun('x')).rejects.toThrow();
			await expect(registry.addRun(makeRun())).rejects.toThrow();
			await down.start();
			await offline.connect().catch(() => undefined);
			await eventually('the client to be ready', () => offline.status === 'ready');
			const downAdmin = new Redis(down.url);
			await downAdmin.config('SET', 'maxmemory-policy', 'allkeys-lfu');
			await downAdmin.quit();
			// The check that could not be sent is made again with a later command.
			await registry.addRun(makeRun());
			await eventually('the warning', () => warnings.length === 1);
			await exercise(registry);
			await new Promise((resolve) => setTimeout(resolve, 200));
			expect(warnings).toHaveLength(1);
			expect(warnings[0]?.message).toContain('allkeys-lfu');
		} finally {
			await down.destroy();
		}
	});
});

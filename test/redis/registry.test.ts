/**
 * RedisRunRegistry against a real redis-server (test/redis/setup.ts): the conformance suite, with
 * and without a terminal TTL, then what is particular to Redis: key layout, expiry, leases, script
 * cache, JSON values.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import type { Run, RunStatus } from '../../src/run.js';
import { describeRunRegistryConformance } from '../../src/testing/index.js';
import { T0, connect, eventually, makeRun, redisUrl, scanAll, scanKeys, uniquePrefix } from './support.js';

let client: Redis;

describe.skipIf(redisUrl === null)('RedisRunRegistry', () => {
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	describeRunRegistryConformance({ describe, it, expect }, () => new RedisRunRegistry({ client, prefix: uniquePrefix() }), {
		name: 'RedisRunRegistry',
		batchRead: true,
		leases: true,
	});
	describeRunRegistryConformance(
		{ describe, it, expect },
		() => new RedisRunRegistry({ client, prefix: uniquePrefix(), terminalTtlMs: 3_600_000 }),
		{ name: 'RedisRunRegistry with terminalTtlMs', batchRead: true, leases: true },
	);

	describe('options and the injected client', () => {
		it('rejects a client with an ioredis keyPrefix, for the registry and the bus', async () => {
			const prefixed = connect({ keyPrefix: 'app:' });
			try {
				expect(() => new RedisRunRegistry({ client: prefixed })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'client.options.keyPrefix' }));
				expect(() => new RedisCancellationBus({ client: prefixed })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'client.options.keyPrefix' }));
			} finally {
				await prefixed.quit();
			}
		});

		it('rejects invalid prefixes, TTLs and clients with ValidationError', () => {
			for (const prefix of ['', 'has space', 'tab\there', 'glob*', 'brace{x}', 'x'.repeat(129), 5 as unknown as string]) {
				expect(() => new RedisRunRegistry({ client, prefix })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'prefix' }));
			}
			for (const terminalTtlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
				expect(() => new RedisRunRegistry({ client, terminalTtlMs })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'terminalTtlMs' }));
			}
			expect(() => new RedisRunRegistry({ client: {} as Redis })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'client' }));
		});

		it('never closes or reconfigures the injected client', async () => {
			const own = connect();
			try {
				const prefix = uniquePrefix();
				await own.ping();
				const keysBefore = Object.keys(own);
				const optionsBefore = { ...own.options };
				const registry = new RedisRunRegistry({ client: own, prefix });
				const bus = new RedisCancellationBus({ client: own, prefix });
				await registry.addRun(makeRun());
				await bus.subscribe(() => {});
				await bus.close();
				await registry.close();
				expect(own.status).toBe('ready');
				expect(await own.ping()).toBe('PONG');
				// Nothing was added to the client (no defineCommand) and none of its options changed (no select).
				expect(Object.keys(own)).toEqual(keysBefore);
				expect({ ...own.options }).toEqual(optionsBefore);
				expect(Object.keys((own as unknown as { scriptsSet: object }).scriptsSet)).toEqual([]);
				expect(await own.get(`${prefix}:nothing`)).toBeNull();
			} finally {
				await own.quit();
			}
		});

		it('rejects ids that are empty, longer than 256 characters or hold control characters', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			for (const runId of ['', 'x'.repeat(257), 'a\nb', 'nul\u0000', 'del\u007F']) {
				await expect(registry.addRun(makeRun({ runId }))).rejects.toMatchObject({ name: 'ValidationError' });
				await expect(registry.getRun(runId)).rejects.toMatchObject({ name: 'ValidationError' });
				await expect(registry.updateRun(runId, { progress: { percent: 1 } })).rejects.toMatchObject({ name: 'ValidationError' });
				await expect(registry.deleteRun(runId)).rejects.toMatchObject({ name: 'ValidationError' });
				await expect(registry.getRuns([runId])).rejects.toMatchObject({ name: 'ValidationError' });
			}
			await expect(registry.addRun(makeRun({ moduleId: '' }))).rejects.toMatchObject({ name: 'ValidationError' });
			await expect(registry.addRun(makeRun({ ownerId: 'o\r' }))).rejects.toMatchObject({ name: 'ValidationError' });
			await expect(registry.addRun(makeRun({ runId: 'x'.repeat(256), itemId: 'é'.repeat(256) }))).resolves.toBeUndefined();
			expect((await registry.listRuns()).runs).toHaveLength(1);
		});
	});

	describe('JSON values', () => {
		it('stores user values exactly as JSON.stringify writes them: empty objects, empty arrays, big and small numbers, unicode', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const parameters = {
				emptyObject: {},
				emptyArray: [],
				nested: { a: [{}, [], [[]]], b: { c: {} } },
				big: 12_345_678_901_234_567_000,
				precise: 0.1 + 0.2,
				tiny: 5e-324,
				negative: -0.5,
				text: 'héllo \u{1F680} "quoted" \\ / \n',
				keys: JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":1}}') as unknown,
			};
			const run = makeRun({ parameters, metadata: {}, progress: { percent: 12.345678901234567 } });
			await registry.addRun(run);
			const stored = await registry.getRun(run.runId);
			expect(JSON.stringify(stored?.parameters)).toBe(JSON.stringify(parameters));
			expect(stored?.metadata).toEqual({});
			expect(stored?.progress).toEqual({ percent: 12.345678901234567 });
			expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
			const updated = await registry.updateRun(run.runId, { status: 'running', result: [], metadata: { deep: { empty: {} } } });
			expect(updated).toMatchObject({ result: [], metadata: { deep: { empty: {} } } });
			expect(Array.isArray((await registry.getRun(run.runId))?.result)).toBe(true);
		});

		it("does not store priority 'normal' or parameters {}, and reads every run back as it was written", async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const plain = makeRun({ parameters: {} });
			const noParameters = makeRun({ parameters: undefined, priority: 'high', createdAt: T0 + 1, updatedAt: T0 + 1 });
			const emptyArray = makeRun({ parameters: [], createdAt: T0 + 2, updatedAt: T0 + 2 });
			for (const run of [plain, noParameters, emptyArray]) await registry.addRun(run);
			expect(await client.hgetall(registry.keys.run(plain.runId))).toEqual({ moduleId: 'mod', status: 'queued', createdAt: String(T0), updatedAt: String(T0) });
			expect(await client.hmget(registry.keys.run(noParameters.runId), 'priority', 'parameters')).toEqual(['high', '']);
			expect(await registry.getRuns([plain.runId, noParameters.runId, emptyArray.runId])).toEqual([plain, noParameters, emptyArray]);
			expect(Object.hasOwn((await registry.getRun(noParameters.runId)) as Run, 'parameters')).toBe(true);
			expect((await registry.listRuns()).runs).toEqual([emptyArray, noParameters, plain]);
		});

		it('resolves updateRun with the whole run as stored: the fields the script leaves out of its reply come from the patch', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const run = makeRun({ itemId: 'chat', metadata: { kept: true }, progress: { percent: 10 } });
			await registry.addRun(run);
			const patch = { status: 'running', ownerId: 'owner-a', priority: 'low', startedAt: T0 + 1, progress: { percent: 50, message: 'half' }, result: -0 } as const;
			const updated = await registry.updateRun(run.runId, patch, { ifStatus: 'queued' });
			expect(updated).toEqual(await registry.getRun(run.runId));
			expect(updated).toMatchObject({ status: 'running', ownerId: 'owner-a', priority: 'low', startedAt: T0 + 1, progress: { percent: 50, message: 'half' }, metadata: { kept: true }, itemId: 'chat' });
			expect(Object.is(updated?.result, 0)).toBe(true);
			// No patched field: the reply is the whole stored run.
			expect(await registry.updateRun(run.runId, {})).toEqual(await registry.getRun(run.runId));
			const completed = await registry.updateRun(run.runId, { status: 'completed', completedAt: T0 + 2, result: { url: 'u' } });
			expect(completed).toEqual(await registry.getRun(run.runId));
			expect(await client.zscore(registry.keys.ended, run.runId)).toBe(String(T0 + 2));
		});

		it('keeps fractional and large timestamps exactly', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const run = makeRun({ createdAt: T0 + 0.123_456_789, updatedAt: 8.64e15, startedAt: 1e-7 });
			await registry.addRun(run);
			expect(await registry.getRun(run.runId)).toEqual(run);
			const page = await registry.listRuns({ limit: 1 });
			expect(page.runs).toEqual([run]);
		});

		it('refuses values JSON cannot represent with ValidationError, storing nothing', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const cycle: Record<string, unknown> = {};
			cycle.self = cycle;
			const bad: unknown[] = [10n, { n: 10n }, () => 1, { f: () => 1 }, { s: Symbol('s') }, { nan: Number.NaN }, [Number.POSITIVE_INFINITY], cycle];
			for (const parameters of bad) {
				const run = makeRun({ parameters });
				await expect(registry.addRun(run)).rejects.toMatchObject({ name: 'ValidationError', field: 'run.parameters' });
				expect(await registry.getRun(run.runId)).toBeUndefined();
			}
			expect((await registry.listRuns()).runs).toEqual([]);

			const run = makeRun({ status: 'running' });
			await registry.addRun(run);
			for (const value of bad) {
				await expect(registry.updateRun(run.runId, { status: 'completed', result: value })).rejects.toMatchObject({ name: 'ValidationError', field: 'patch.result' });
			}
			await expect(registry.updateRun(run.runId, { metadata: { when: 1n } })).rejects.toMatchObject({ name: 'ValidationError', field: 'patch.metadata' });
			expect(await registry.getRun(run.runId)).toEqual(run);
		});
	});

	describe('ordering and paging', () => {
		it('orders ties on createdAt by runId, descending byte-wise, across pages of one', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const ids = ['b', 'a', 'B', 'aa', 'a:b', 'é', 'z', '0', 'a b'];
			for (const runId of ids) await registry.addRun(makeRun({ runId }));
			const expected = [...ids].sort((x, y) => Buffer.compare(Buffer.from(y), Buffer.from(x)));
			const walked: string[] = [];
			let cursor: string | undefined;
			do {
				const page = await registry.listRuns(cursor === undefined ? { limit: 1 } : { limit: 1, cursor });
				walked.push(...page.runs.map((run) => run.runId));
				cursor = page.nextCursor;
			} while (cursor !== undefined);
			expect(walked).toEqual(expected);
		});

		it('pages every query exactly like a sort-and-filter of all runs (many ties, random limits)', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			let seed = 42;
			const random = (n: number): number => {
				seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
				return seed % n;
			};
			const statuses: RunStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
			const runs: Run[] = [];
			for (let index = 0; index < 300; index++) {
				const run = makeRun({
					runId: `r${random(100_000)}-${index}`,
					createdAt: T0 + random(15),
					status: statuses[random(5)] as RunStatus,
					moduleId: `m${random(3)}`,
					...(random(3) === 0 ? {} : { itemId: `i${random(4)}` }),
					...(random(4) === 0 ? {} : { ownerId: `o${random(3)}` }),
				});
				runs.push(run);
			}
			await Promise.all(runs.map((run) => registry.addRun(run)));
			const order = (a: Run, b: Run): number => b.createdAt - a.createdAt || Buffer.compare(Buffer.from(b.runId), Buffer.from(a.runId));
			const queries = [
				{},
				{ status: 'running' as const },
				{ status: ['queued', 'failed'] as RunStatus[] },
				{ moduleId: 'm1' },
				{ itemId: 'i2', status: ['completed', 'cancelled', 'queued'] as RunStatus[] },
				{ ownerId: 'o0', moduleId: 'm2' },
				{ ownerId: 'o1', itemId: 'i0', status: 'queued' as const },
			];
			for (const query of queries) {
				const statusSet = query.status === undefined ? undefined : new Set([query.status].flat());
				const expected = runs
					.filter(
						(run) =>
							(statusSet === undefined || statusSet.has(run.status)) &&
							(!('moduleId' in query) || run.moduleId === query.moduleId) &&
							(!('itemId' in query) || run.itemId === query.itemId) &&
							(!('ownerId' in query) || run.ownerId === query.ownerId),
					)
					.sort(order)
					.map((run) => run.runId);
				const limit = 1 + random(9);
				const walked: string[] = [];
				let cursor: string | undefined;
				let pages = 0;
				do {
					const page = await registry.listRuns(cursor === undefined ? { ...query, limit } : { ...query, limit, cursor });
					expect(page.runs.length).toBeLessThanOrEqual(limit);
					walked.push(...page.runs.map((run) => run.runId));
					cursor = page.nextCursor;
					pages++;
				} while (cursor !== undefined && pages < 1_000);
				expect(walked).toEqual(expected);
			}
		});
	});

	describe('getRuns', () => {
		it('returns the runs in the order asked, undefined for unknown ids, in one round trip', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const a = makeRun();
			const b = makeRun({ status: 'running', ownerId: 'o' });
			await registry.addRun(a);
			await registry.addRun(b);
			expect(await registry.getRuns([b.runId, 'missing', a.runId, b.runId])).toEqual([b, undefined, a, b]);
			expect(await registry.getRuns([])).toEqual([]);
		});
	});

	describe('cleanupOldRuns', () => {
		it('removes more runs than one script call takes, with their index entries', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const old = Date.now() - 86_400_000;
			const runs = Array.from({ length: 2_300 }, (_, index) =>
				makeRun({ status: 'completed', moduleId: `m${index % 3}`, itemId: `i${index % 7}`, createdAt: old, updatedAt: old, completedAt: old }),
			);
			const active = makeRun({ status: 'running', itemId: 'i1', ownerId: 'o' });
			for (let start = 0; start < runs.length; start += 500) await Promise.all(runs.slice(start, start + 500).map((run) => registry.addRun(run)));
			await registry.addRun(active);
			expect(await registry.cleanupOldRuns(60_000)).toBe(2_300);
			expect((await registry.listRuns()).runs).toEqual([active]);
			const keys = await scanKeys(client, prefix);
			expect(keys.filter((key) => key.startsWith(`${prefix}:run:`))).toEqual([`${prefix}:run:${active.runId}`]);
			await expectNoOrphans(prefix);
		});
	});

	describe('terminalTtlMs', () => {
		it('expires terminal runs and every index entry they had; active runs stay', async () => {
			const prefix = uniquePrefix();
			const ttl = 300;
			const registry = new RedisRunRegistry({ client, prefix, terminalTtlMs: ttl });
			const addedTerminal = makeRun({ status: 'completed', itemId: 'item', ownerId: 'owner-a', completedAt: T0 + 1, result: { ok: 1 } });
			const finished = makeRun({ status: 'running', itemId: 'item', ownerId: 'owner-a', moduleId: 'other' });
			const cancelled = makeRun({ ownerId: 'owner-b' });
			const reaped = makeRun({ status: 'running', ownerId: 'owner-gone' });
			const active = makeRun({ status: 'running', itemId: 'item', ownerId: 'owner-a' });
			const queued = makeRun({ itemId: 'item' });
			for (const run of [addedTerminal, finished, cancelled, reaped, active, queued]) await registry.addRun(run);
			await registry.updateRun(finished.runId, { status: 'completed', completedAt: Date.now() });
			await registry.updateRun(cancelled.runId, { status: 'cancelled' }, { ifStatus: ['queued', 'running'] });
			await registry.heartbeat('owner-a', 60_000);
			expect(await registry.reapOrphans()).toEqual([reaped.runId]);

			const ended = [addedTerminal, finished, cancelled, reaped];
			for (const run of ended) {
				const pttl = await client.pttl(`${prefix}:run:${run.runId}`);
				expect(pttl).toBeGreaterThan(0);
				expect(pttl).toBeLessThanOrEqual(ttl);
			}
			expect(await client.pttl(`${prefix}:run:${active.runId}`)).toBe(-1);

			await eventually('the terminal runs to expire', async () => (await registry.getRuns(ended.map((run) => run.runId))).every((run) => run === undefined));
			// Redis ran no code on expiry: the index entries go at the next script call.
			expect(ids((await registry.listRuns()).runs)).toEqual(ids([queued, active]));
			const keys = await scanKeys(client, prefix);
			for (const run of ended) expect(keys.filter((key) => key.includes(run.runId))).toEqual([]);
			await expectNoOrphans(prefix);
			for (const query of [{ itemId: 'item' }, { moduleId: 'other' }, { status: ['completed', 'failed', 'cancelled'] as RunStatus[] }, { ownerId: 'owner-a' }]) {
				const listed = ids((await registry.listRuns(query)).runs);
				expect(listed.filter((id) => ended.some((run) => run.runId === id))).toEqual([]);
			}
			expect(await registry.cleanupOldRuns(0)).toBe(0);

			// An expired id can be used again, and the new run does not inherit the old TTL.
			const again = makeRun({ runId: finished.runId, status: 'running', ownerId: 'owner-a' });
			await registry.addRun(again);
			expect(await registry.getRun(again.runId)).toEqual(again);
			expect(await client.pttl(`${prefix}:run:${again.runId}`)).toBe(-1);
		});
	});

	describe('key layout', () => {
		it('puts every key and channel under the prefix', async () => {
			const prefix = uniquePrefix();
			const marker = `mk${Date.now().toString(36)}`;
			const registry = new RedisRunRegistry({ client, prefix, terminalTtlMs: 60_000 });
			const bus = new RedisCancellationBus({ client, prefix });
			try {
				await bus.subscribe(() => {});
				const run = makeRun({ runId: `${marker}-run`, moduleId: `${marker}-module`, itemId: `${marker}-item`, ownerId: `${marker}-owner` });
				const other = makeRun({ runId: `${marker}-other`, moduleId: `${marker}-module`, status: 'running', ownerId: `${marker}-lost` });
				await registry.addRun(run);
				await registry.addRun(other);
				await registry.heartbeat(`${marker}-owner`, 60_000);
				await registry.updateRun(run.runId, { status: 'running', ownerId: `${marker}-owner2` });
				await registry.heartbeat(`${marker}-owner2`, 60_000);
				await registry.reapOrphans();
				await registry.updateRun(run.runId, { status: 'completed', completedAt: Date.now() });
				await bus.publish({ type: 'cancel', runId: run.runId });

				const everything = await scanAll(client);
				const ours = everything.filter((key) => key.includes(marker) || key.startsWith(prefix));
				expect(ours.length).toBeGreaterThan(5);
				for (const key of ours) expect(key.startsWith(`${prefix}:`)).toBe(true);
				const layout = [
					/^run:/,
					/^idx:(all|ended|expiry|expiry-info)$/,
					/^idx:(status|module|item|owner):/,
					/^owners$/,
					/^active:/,
					/^owner:/,
				];
				for (const key of ours) expect(layout.some((pattern) => pattern.test(key.slice(prefix.length + 1)))).toBe(true);
				const channels = (await client.pubsub('CHANNELS', `*${prefix.slice(2)}*`)) as string[];
				expect(channels).toEqual([`${prefix}:cancel`]);
				expect(bus.channel).toBe(`${prefix}:cancel`);
			} finally {
				await bus.close();
			}
		});
	});

	describe('scripts', () => {
		it('passes Redis errors through as they are', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			const stringKey = uniquePrefix();
			// A key of the wrong type where an index must be: the script fails and says why.
			const wrong = new RedisRunRegistry({ client, prefix: stringKey });
			await client.set(`${stringKey}:idx:status:queued`, 'not a sorted set');
			await expect(wrong.addRun(makeRun())).rejects.toThrow(/WRONGTYPE/);
			await client.del(`${stringKey}:idx:status:queued`);
			await expect(registry.listRuns()).resolves.toEqual({ runs: [] });
		});
	});

	describe('leases and reapOrphans', () => {
		it('fails the queued and running runs of an owner whose lease expired, and nothing else', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const lost = 'owner-lost';
			const live = 'owner-live';
			await registry.heartbeat(lost, 150);
			await registry.heartbeat(live, 60_000);
			const lostQueued = makeRun({ ownerId: lost, itemId: 'chat' });
			const lostRunning = makeRun({ status: 'running', ownerId: lost, startedAt: T0 + 1 });
			const lostDone = makeRun({ status: 'completed', ownerId: lost, completedAt: T0 + 2 });
			const liveRunning = makeRun({ status: 'running', ownerId: live });
			const noOwner = makeRun({ status: 'running' });
			const movedAway = makeRun({ status: 'running', ownerId: lost });
			for (const run of [lostQueued, lostRunning, lostDone, liveRunning, noOwner, movedAway]) await registry.addRun(run);
			const moved = await registry.updateRun(movedAway.runId, { ownerId: live });

			expect(await registry.reapOrphans()).toEqual([]);
			const pttl = await client.pttl(`${prefix}:owner:${lost}`);
			expect(pttl).toBeGreaterThan(0);
			expect(pttl).toBeLessThanOrEqual(150);
			await eventually('the lease to expire', async () => (await client.exists(`${prefix}:owner:${lost}`)) === 0);

			const before = Date.now();
			const reaped = await registry.reapOrphans();
			const after = Date.now();
			expect([...reaped].sort()).toEqual([lostQueued.runId, lostRunning.runId].sort());
			for (const run of [lostQueued, lostRunning]) {
				const stored = await registry.getRun(run.runId);
				expect(stored).toMatchObject({ status: 'failed', ownerId: lost, error: { name: 'OwnerLostError' } });
				expect(stored?.error?.message).toContain(lost);
				expect(stored?.completedAt).toBeGreaterThanOrEqual(before);
				expect(stored?.completedAt).toBeLessThanOrEqual(after);
				expect(stored?.updatedAt).toBe(stored?.completedAt);
			}
			expect(await registry.getRun(lostDone.runId)).toEqual(lostDone);
			expect(await registry.getRun(liveRunning.runId)).toEqual(liveRunning);
			expect(await registry.getRun(noOwner.runId)).toEqual(noOwner);
			expect(await registry.getRun(movedAway.runId)).toEqual(moved);

			// The lost owner's late write loses its compare-and-set and changes nothing.
			const late = await registry.updateRun(lostRunning.runId, { status: 'completed', result: { late: true }, completedAt: Date.now() }, { ifStatus: 'running' });
			expect(late).toBeUndefined();
			expect(await registry.getRun(lostRunning.runId)).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
			expect((await registry.getRun(lostRunning.runId))?.result).toBeUndefined();

			expect(ids((await registry.listRuns({ status: 'failed', ownerId: lost })).runs).sort()).toEqual([lostQueued.runId, lostRunning.runId].sort());
			expect(ids((await registry.listRuns({ itemId: 'chat', status: ['queued', 'running'] })).runs)).toEqual([]);
			expect(await registry.reapOrphans()).toEqual([]);
			expect(await registry.cleanupOldRuns(60_000)).toBe(1);

			// A clean shutdown releases the lease at once: the owner's runs are reapable.
			await registry.releaseOwner(live);
			expect(await client.exists(`${prefix}:owner:${live}`)).toBe(0);
			expect([...(await registry.reapOrphans())].sort()).toEqual([liveRunning.runId, movedAway.runId].sort());
			expect(await registry.getRun(noOwner.runId)).toEqual(noOwner);
			await expectNoOrphans(prefix);
		});

		it('a renewed lease keeps its owner alive', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const run = makeRun({ status: 'running', ownerId: 'renewing' });
			await registry.addRun(run);
			await registry.heartbeat('renewing', 200);
			for (let beat = 0; beat < 5; beat++) {
				await new Promise((resolve) => setTimeout(resolve, 80));
				await registry.heartbeat('renewing', 200);
				expect(await registry.reapOrphans()).toEqual([]);
			}
			expect(await registry.getRun(run.runId)).toEqual(run);
		});

		it('rejects invalid lease arguments with ValidationError', async () => {
			const registry = new RedisRunRegistry({ client, prefix: uniquePrefix() });
			for (const ttl of [0, -5, 1.5, Number.NaN]) await expect(registry.heartbeat('o', ttl)).rejects.toMatchObject({ name: 'ValidationError' });
			await expect(registry.heartbeat('', 1_000)).rejects.toMatchObject({ name: 'ValidationError' });
			await expect(registry.releaseOwner('x'.repeat(300))).rejects.toMatchObject({ name: 'ValidationError' });
		});
	});
});

function ids(runs: readonly Run[]): string[] {
	return runs.map((run) => run.runId);
}

/**
 * Every entry of every index of `prefix` refers to a stored run that belongs there, and every
 * run is in the indexes it should be in.
 */
async function expectNoOrphans(prefix: string): Promise<void> {
	const keys = await scanKeys(client, prefix);
	const runKeys = keys.filter((key) => key.startsWith(`${prefix}:run:`));
	const runs = new Map<string, Record<string, string>>();
	for (const key of runKeys) runs.set(key.slice(`${prefix}:run:`.length), await client.hgetall(key));
	for (const key of keys) {
		const type = await client.type(key);
		const rest = key.slice(prefix.length + 1);
		if (type === 'zset') {
			const members = await client.zrange(key, 0, -1);
			for (const member of members) {
				const run = runs.get(member);
				expect(run, `${key} holds ${member}, which is not stored`).toBeDefined();
				const [, kind, value] = /^idx:([a-z-]+)(?::(.*))?$/s.exec(rest) ?? [];
				if (kind === 'status') expect(run?.status).toBe(value);
				if (kind === 'module') expect(run?.moduleId).toBe(value);
				if (kind === 'item') expect(run?.itemId).toBe(value);
				if (kind === 'owner') expect(run?.ownerId).toBe(value);
				if (kind === 'ended' || kind === 'expiry') expect(['completed', 'failed', 'cancelled']).toContain(run?.status);
			}
		} else if (type === 'set' && rest === 'owners') {
			for (const owner of await client.smembers(key)) expect(await client.exists(`${prefix}:active:${owner}`)).toBe(1);
		} else if (type === 'set') {
			const owner = rest.slice('active:'.length);
			for (const member of await client.smembers(key)) {
				expect(runs.get(member)).toMatchObject({ ownerId: owner });
				expect(['queued', 'running']).toContain(runs.get(member)?.status);
			}
			expect(await client.sismember(`${prefix}:owners`, owner)).toBe(1);
		} else if (type === 'hash' && rest === 'idx:expiry-info') {
			for (const member of await client.hkeys(key)) expect(runs.has(member)).toBe(true);
		}
	}
	// Every run is in the index of its status (which listing without a filter merges).
	for (const [runId, run] of runs) expect(await client.zscore(`${prefix}:idx:status:${run.status}`, runId), `${runId} is not in its status index`).not.toBeNull();
}

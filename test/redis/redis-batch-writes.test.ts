/**
 * RedisRunRegistry.applyWrites against real redis-servers: what the conformance suite cannot see.
 * One script call per batch (counted with INFO commandstats on a server of this file's own), the
 * commands each write costs, chunking of large batches, the same outcome and the same keys as the
 * single calls for random sequences of writes, loading the function library again, and a lost connection.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RunWrite, RunWriteResult } from '../../src/registry.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import { LIBRARY } from '../../src/redis/scripts.js';
import type { Run, RunPatch, RunStatus } from '../../src/run.js';
import { RedisServer } from '../support/redis-server.js';
import { T0, connect, makeRun, redisUrl, scanKeys, uniquePrefix } from './support.js';


const add = (run: Run): RunWrite => ({ type: 'add', run });
const update = (runId: string, ifStatus: RunStatus, patch: RunPatch): RunWrite => ({ type: 'update', runId, ifStatus, patch });

// The writes the manager makes for one run that is added queued, starts, and completes.
const lifecycle = (run: Run): RunWrite[] => [
	add(run),
	update(run.runId, 'queued', { status: 'running', startedAt: T0 + 1 }),
	update(run.runId, 'running', { status: 'completed', result: 1, completedAt: T0 + 2 }),
];

/** Calls per command since the last `CONFIG RESETSTAT`, without the commands of the measurement itself. */
async function commandStats(admin: Redis): Promise<Map<string, number>> {
	const stats = new Map<string, number>();
	for (const match of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
		if (match[1] !== 'info' && !(match[1] as string).startsWith('config')) stats.set(match[1] as string, Number(match[2]));
	}
	return stats;
}

const total = (stats: ReadonlyMap<string, number>): number => [...stats.values()].reduce((sum, calls) => sum + calls, 0);

describe.skipIf(redisUrl === null)('RedisRunRegistry.applyWrites', () => {
	// A server of this file's own, so that INFO commandstats counts this file's commands only.
	let server: RedisServer;
	let own: Redis;
	let admin: Redis;
	let client: Redis;

	beforeAll(async () => {
		server = await RedisServer.started();
		own = new Redis(server.url, { maxRetriesPerRequest: 3 });
		admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
		client = connect();
	});
	afterAll(async () => {
		await own.quit();
		await admin.quit();
		await client.quit();
		await server.destroy();
	});

	// The commands Redis executes for `body`, scripts' own calls included.
	const measure = async (body: () => Promise<void>): Promise<Map<string, number>> => {
		await admin.config('RESETSTAT');
		await body();
		return commandStats(admin);
	};

	describe('round trips and commands', () => {
		it('sends one FCALL per batch and reads TIME once per batch that holds an update', async () => {
			const registry = new RedisRunRegistry({ client: own, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			// Loads the library, so that no FUNCTION LOAD is counted.
			await registry.applyWrites(lifecycle(makeRun()));
			const runs = Array.from({ length: 200 }, (_, index) => makeRun({ createdAt: T0 + index }));

			const stats = await measure(async () => {
				const results = [
					...(await registry.applyWrites(runs.map(add))),
					...(await registry.applyWrites(runs.map((run) => update(run.runId, 'queued', { status: 'running', startedAt: T0 + 1 })))),
					...(await registry.applyWrites(runs.map((run) => update(run.runId, 'running', { status: 'completed', result: 1, completedAt: T0 + 2 })))),
				];
				expect(results.every((result) => result.outcome === 'applied')).toBe(true);
			});
			expect(stats.get('fcall')).toBe(3);
			// The batch of adds has no update and no TTL: no TIME at all.
			expect(stats.get('time')).toBe(2);
			// Once, in the batch of adds: nothing of the prefix expires, no added id needs settling.
			expect(stats.get('zcard')).toBe(1);
			expect(stats.get('zscore')).toBeUndefined();
			// Per write: EXISTS and HSET for an add, HMGET and HSET for an update.
			expect(stats.get('exists')).toBe(200);
			expect(stats.get('hmget')).toBe(400);
			expect(stats.get('hset')).toBe(600);
			expect(stats.get('hgetall')).toBeUndefined();
			// Per batch and index key, one call: adds to status:queued and module (there is no index of
			// all runs); then status running in and queued out; then completed and ended in, running out.
			expect(stats.get('zadd')).toBe(2 + 1 + 2);
			expect(stats.get('zrem')).toBe(2);
			expect(total(stats)).toBe(200 * 6 + 3 + 2 + 1 + 7);
			console.log(`applyWrites, 3 batches of 200 (adds, starts, completions): ${total(stats)} commands, ${(total(stats) / runs.length).toFixed(2)} per run`, Object.fromEntries(stats));

			for (const run of runs) expect(await registry.getRun(run.runId)).toMatchObject({ status: 'completed', result: 1 });
			expect((await registry.listRuns({ status: 'completed', limit: 1_000 })).runs).toHaveLength(201);
		});

		it('runs a whole lifecycle per run in one batch in one script call, and costs fewer commands than the single calls', async () => {
			const registry = new RedisRunRegistry({ client: own, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			const owned = (index: number) => makeRun({ createdAt: T0 + index, ownerId: 'instance-1' });
			// Calls both kinds of script once first, as in a running service.
			await registry.applyWrites(lifecycle(owned(-1)));
			const warm = owned(-2);
			await registry.addRun(warm);
			await registry.updateRun(warm.runId, { status: 'running' });
			await registry.updateRun(warm.runId, { status: 'completed' });

			const runs = Array.from({ length: 300 }, (_, index) => owned(index));
			const batched = await measure(async () => {
				const results = await registry.applyWrites(runs.flatMap(lifecycle));
				expect(results).toHaveLength(900);
				expect(results.every((result) => result.outcome === 'applied')).toBe(true);
			});
			expect(batched.get('fcall')).toBe(1);
			expect(batched.get('time')).toBe(1);
			// One owner: put in p:owners once; each run joins and leaves its active set within the
			// batch, which comes down to one SREM; checked once for having no active run left, and
			// taken out of p:owners with one SREM.
			expect(batched.get('sadd')).toBe(1);
			expect(batched.get('srem')).toBe(2);
			expect(batched.get('exists')).toBe(301);
			expect(await own.smembers(registry.keys.owners)).toEqual([]);

			const singles = Array.from({ length: 300 }, (_, index) => owned(1_000 + index));
			const single = await measure(async () => {
				for (const run of singles) {
					await registry.addRun(run);
					await registry.updateRun(run.runId, { status: 'running', startedAt: T0 + 1 }, { ifStatus: 'queued' });
					await registry.updateRun(run.runId, { status: 'completed', result: 1, completedAt: T0 + 2 }, { ifStatus: 'running' });
				}
			});
			expect(single.get('fcall')).toBe(900);
			const batchedPerRun = total(batched) / runs.length;
			const singlePerRun = total(single) / singles.length;
			console.log(
				`with an owner — one batch of 300 × (add, start, complete): ${batchedPerRun.toFixed(2)} commands per run, FCALL included`,
				Object.fromEntries(batched),
				`; the single calls: ${singlePerRun.toFixed(2)} per run`,
				Object.fromEntries(single),
			);
			expect(batchedPerRun).toBeLessThan(singlePerRun);
			// The same runs, stored the same way.
			const [a, b] = [(await registry.getRun(runs[7]?.runId as string)) as Run, (await registry.getRun(singles[7]?.runId as string)) as Run];
			expect({ ...a, runId: '', createdAt: 0, updatedAt: 0 }).toEqual({ ...b, runId: '', createdAt: 0, updatedAt: 0 });
		});

		it('splits a batch of more than 1,000 writes into several script calls, in order', async () => {
			const registry = new RedisRunRegistry({ client: own, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			await registry.applyWrites([add(makeRun())]);
			const runs = Array.from({ length: 1_250 }, (_, index) => makeRun({ createdAt: T0 + index }));
			// The adds fill the first call and part of the second; each update follows its add in a later call.
			const writes = [...runs.map(add), ...runs.map((run) => update(run.runId, 'queued', { status: 'running' }))];
			let results: RunWriteResult[] = [];
			const stats = await measure(async () => {
				results = await registry.applyWrites(writes);
			});
			expect(stats.get('fcall')).toBe(3);
			expect(results).toHaveLength(2_500);
			expect(results.every((result) => result.outcome === 'applied')).toBe(true);
			expect((await registry.listRuns({ status: 'running', limit: 10_000 })).runs).toHaveLength(1_250);
		});

		it('splits a batch by size too: no script call carries much more than 8 MiB of arguments', async () => {
			const registry = new RedisRunRegistry({ client: own, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			await registry.applyWrites([add(makeRun())]);
			const big = 'x'.repeat(1_000_000);
			const runs = Array.from({ length: 20 }, () => makeRun({ status: 'running' }));
			await registry.applyWrites(runs.map(add));
			let results: RunWriteResult[] = [];
			const stats = await measure(async () => {
				results = await registry.applyWrites(runs.map((run) => update(run.runId, 'running', { status: 'completed', result: big })));
			});
			expect(stats.get('fcall')).toBeGreaterThanOrEqual(3);
			expect(results.every((result) => result.outcome === 'applied')).toBe(true);
			expect((await registry.getRun(runs[19]?.runId as string))?.result).toBe(big);
		});
	});

	describe('the same as the single calls', () => {
		// Everything under `prefix`, times that come from Redis' clock left out: run hashes without
		// updatedAt, the ended index without scores (a run's end is updatedAt when it has no completedAt).
		const dump = async (prefix: string): Promise<Record<string, unknown>> => {
			const out: Record<string, unknown> = {};
			for (const key of await scanKeys(client, prefix)) {
				const name = key.slice(prefix.length);
				const type = await client.type(key);
				if (type === 'hash') {
					const { updatedAt: _updatedAt, ...hash } = await client.hgetall(key);
					out[name] = hash;
				} else if (type === 'zset') {
					out[name] = name === ':idx:ended' ? (await client.zrange(key, 0, -1)).sort() : await client.zrange(key, 0, -1, 'WITHSCORES');
				} else if (type === 'set') {
					out[name] = (await client.smembers(key)).sort();
				} else {
					out[name] = type;
				}
			}
			return out;
		};

		const outcome = (result: RunWriteResult): unknown =>
			result.outcome === 'failed' ? { outcome: 'failed', name: (result.error as Error).name, from: (result.error as { from?: unknown }).from, to: (result.error as { to?: unknown }).to } : result;

		const single = async (registry: RedisRunRegistry, write: RunWrite): Promise<RunWriteResult> => {
			try {
				if (write.type === 'add') {
					await registry.addRun(write.run);
					return { outcome: 'applied' };
				}
				const updated = await registry.updateRun(write.runId, write.patch, { ifStatus: write.ifStatus });
				return updated === undefined ? { outcome: 'missed' } : { outcome: 'applied' };
			} catch (error) {
				return { outcome: 'failed', error };
			}
		};

		for (const seed of [1, 2, 3, 4, 5]) {
			it(`gives the outcomes and leaves the keys of the single calls, for 400 random writes on 40 ids (seed ${seed})`, async () => {
				let state = seed;
				const random = (n: number): number => {
					state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
					// The high bits: the low ones of this generator cycle quickly.
					return Math.floor(state / 65_536) % n;
				};
				const pick = <T,>(items: readonly T[]): T => items[random(items.length)] as T;
				const statuses: RunStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
				const ids = Array.from({ length: 40 }, (_, index) => `id-${index}`);
				const writes: RunWrite[] = [];
				for (let index = 0; index < 400; index++) {
					const runId = pick(ids);
					if (random(3) === 0) {
						const status = pick(['queued', 'queued', 'running', 'running', ...statuses] as RunStatus[]);
						const run: Run = {
							...makeRun({ runId, status, moduleId: pick(['m1', 'm2']), createdAt: T0 + random(50), updatedAt: T0 + 60 }),
							...(random(2) === 0 ? { itemId: pick(['i1', 'i2', 'i3']) } : {}),
							...(random(3) !== 0 ? { ownerId: pick(['o1', 'o2']) } : {}),
							...(status === 'completed' ? { result: { index } } : {}),
							...(random(2) === 0 && ['completed', 'failed', 'cancelled'].includes(status) ? { completedAt: T0 + 70 } : {}),
						};
						writes.push(add(run));
					} else {
						const patch: RunPatch = {};
						if (random(3) !== 0) patch.status = pick(['running', 'running', 'queued', ...statuses] as RunStatus[]);
						if (random(3) === 0) patch.ownerId = pick(['o1', 'o2', 'o3']);
						if (random(2) === 0) patch.progress = { percent: random(100) };
						if (random(4) === 0) patch.result = { index };
						if (random(4) === 0) patch.completedAt = T0 + 80 + random(10);
						if (random(5) === 0) patch.metadata = { index };
						writes.push(update(runId, pick(['queued', 'running', 'running', ...statuses] as RunStatus[]), patch));
					}
				}

				const prefixA = uniquePrefix();
				const prefixB = uniquePrefix();
				const batched = new RedisRunRegistry({ client, prefix: prefixA });
				const singles = new RedisRunRegistry({ client, prefix: prefixB });
				const batchedResults: RunWriteResult[] = [];
				for (let start = 0; start < writes.length; ) {
					const size = 1 + random(60);
					batchedResults.push(...(await batched.applyWrites(writes.slice(start, start + size))));
					start += size;
				}
				const singleResults: RunWriteResult[] = [];
				for (const write of writes) singleResults.push(await single(singles, write));

				expect(batchedResults.map(outcome)).toEqual(singleResults.map(outcome));
				const counts = { applied: 0, missed: 0, failed: 0 };
				for (const result of batchedResults) counts[result.outcome]++;
				// Every kind of outcome, many times.
				expect(Math.min(counts.applied, counts.missed, counts.failed)).toBeGreaterThanOrEqual(40);
				expect(await dump(prefixA)).toEqual(await dump(prefixB));
				const runsA = await batched.getRuns(ids);
				const runsB = await singles.getRuns(ids);
				expect(runsA.map((run) => run && { ...run, updatedAt: 0 })).toEqual(runsB.map((run) => run && { ...run, updatedAt: 0 }));
			});
		}

		it('with terminalTtlMs, expires runs ended in a batch with their index entries, like the single calls', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix, terminalTtlMs: 200 });
			const runs = Array.from({ length: 5 }, (_, index) => makeRun({ itemId: 'item', ownerId: 'o', createdAt: T0 + index }));
			const kept = makeRun({ itemId: 'item', ownerId: 'o', createdAt: T0 + 9 });
			expect((await registry.applyWrites([...runs.flatMap(lifecycle), add(kept)])).every((result) => result.outcome === 'applied')).toBe(true);
			for (const run of runs) {
				const pttl = await client.pttl(registry.keys.run(run.runId));
				expect(pttl).toBeGreaterThan(0);
				expect(pttl).toBeLessThanOrEqual(200);
			}
			expect(await client.pttl(registry.keys.run(kept.runId))).toBe(-1);
			await new Promise((resolve) => setTimeout(resolve, 400));
			// The next batch purges what expired before it writes: an expired id can be added again.
			const again = makeRun({ runId: runs[0]?.runId as string, createdAt: T0 + 20 });
			expect(await registry.applyWrites([add(again)])).toEqual([{ outcome: 'applied' }]);
			expect((await registry.listRuns({ itemId: 'item' })).runs.map((run) => run.runId)).toEqual([kept.runId]);
			expect((await registry.listRuns()).runs.map((run) => run.runId)).toEqual([again.runId, kept.runId]);
			const keys = await scanKeys(client, prefix);
			expect(keys.filter((key) => key.includes(':run:')).sort()).toEqual([registry.keys.run(again.runId), registry.keys.run(kept.runId)].sort());
			expect(await client.zcard(registry.keys.expiry)).toBe(0);
			expect(await client.hlen(registry.keys.expiryInfo)).toBe(0);
		});
	});

	describe('scripts and connections', () => {
		it('loads the function library again after FUNCTION FLUSH', async () => {
			const registry = new RedisRunRegistry({ client: own, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
			const run = makeRun();
			await registry.applyWrites([add(makeRun())]);
			await own.call('FUNCTION', 'FLUSH');
			const stats = await measure(async () => {
				expect(await registry.applyWrites(lifecycle(run))).toEqual([{ outcome: 'applied' }, { outcome: 'applied' }, { outcome: 'applied' }]);
			});
			// The call that missed it, the load, the call again.
			expect(stats.get('fcall')).toBe(2);
			expect(stats.get('function|load')).toBe(1);
			expect(await own.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY.name)).toHaveLength(1);
			expect(await registry.getRun(run.runId)).toMatchObject({ status: 'completed' });
		});

		it('passes a Redis error through, the writes before it applied with every index entry', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const before = makeRun({ ownerId: 'o', itemId: 'i' });
			const blocked = makeRun();
			// A foreign key of the wrong type where a run must be.
			await client.set(registry.keys.run(blocked.runId), 'not a hash');
			await expect(registry.applyWrites([add(before), update(before.runId, 'queued', { status: 'running' }), update(blocked.runId, 'queued', { status: 'running' }), add(makeRun())])).rejects.toThrow(/WRONGTYPE/);
			expect(await registry.getRun(before.runId)).toMatchObject({ status: 'running' });
			expect((await registry.listRuns({ status: 'running', ownerId: 'o', itemId: 'i' })).runs.map((run) => run.runId)).toEqual([before.runId]);
			expect(await client.smembers(registry.keys.active('o'))).toEqual([before.runId]);
			expect(await client.smembers(registry.keys.owners)).toEqual(['o']);
			expect((await registry.listRuns()).runs.map((run) => run.runId)).toEqual([before.runId]);
		});

		it('sends nothing for a batch whose writes all fail their checks, and rejects a batch whose script call fails', async () => {
			const down = await RedisServer.started();
			const lost = new Redis(down.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50 });
			lost.on('error', () => undefined);
			try {
				const registry = new RedisRunRegistry({ client: lost, prefix: uniquePrefix(), checkMaxmemoryPolicy: false });
				await new Promise((resolve) => lost.once('ready', resolve));
				await down.stop('SIGKILL');
				const invalid = await registry.applyWrites([add({ ...makeRun(), moduleId: '' }), update('', 'queued', {}), update('x', 'nope' as RunStatus, {})]);
				expect(invalid).toMatchObject([
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
				]);
				await expect(registry.applyWrites([add(makeRun()), add({ ...makeRun(), moduleId: '' })])).rejects.toThrow();
				await expect(registry.applyWrites('nope' as unknown as RunWrite[])).rejects.toMatchObject({ name: 'ValidationError', field: 'writes' });
			} finally {
				lost.disconnect();
				await down.destroy();
			}
		});
	});
});

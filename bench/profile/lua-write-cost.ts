/**
 * What a batched write costs inside Redis beyond the commands it runs: `applyWrites` batches of
 * 1,000 adds, then 1,000 starts, then 1,000 completions, each timed with `INFO commandstats`
 * (the FCALL's usec minus the usec of the commands it ran), per write. The rest is Lua: the
 * script's own work and the conversion of each `redis.call`'s arguments and reply. Next to it,
 * the floor of that conversion for the commands an update runs (HMGET of 7 fields, HSET of 3),
 * in a loop of 1,000 with no other work. On this benchmark's own redis-server.
 *
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/lua-write-cost.ts
 */
import { Redis } from 'ioredis';

import { RedisRunRegistry } from '../../src/redis/index.js';
import type { RunWrite } from '../../src/registry.js';
import { startRedisServer } from '../redis-server.js';
import { median } from '../stats.js';

const WRITES = 1_000;
const server = await startRedisServer();
const client = new Redis(server.url);
const admin = new Redis(server.url);

// usec spent by `command` and by every other command (a script's own calls), since the last reset.
async function usecOf(command: string): Promise<{ own: number; others: number }> {
	let own = 0;
	let others = 0;
	for (const [, name, usec] of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) {
		if (name === command) own += Number(usec);
		else if (name !== 'info' && !name!.startsWith('config')) others += Number(usec);
	}
	return { own, others };
}

const perWrite: Record<'add' | 'start' | 'complete', number[]> = { add: [], start: [], complete: [] };
for (let round = 0; round < 12; round++) {
	const registry = new RedisRunRegistry({ client, prefix: `cost${round}`, checkMaxmemoryPolicy: false });
	const now = Date.now();
	const runIds = Array.from({ length: WRITES }, (_, index) => `run-${round}-${index}`);
	const batches: Array<[keyof typeof perWrite, RunWrite[]]> = [
		['add', runIds.map((runId, index) => ({ type: 'add', run: { runId, moduleId: 'bench', priority: 'normal', parameters: {}, status: 'queued', createdAt: now + index, updatedAt: now + index } }))],
		['start', runIds.map((runId) => ({ type: 'update', runId, ifStatus: 'queued', patch: { status: 'running', startedAt: now + WRITES } }))],
		['complete', runIds.map((runId) => ({ type: 'update', runId, ifStatus: 'running', patch: { status: 'completed', result: 1, completedAt: now + WRITES + 1 } }))],
	];
	for (const [kind, writes] of batches) {
		await admin.config('RESETSTAT');
		await registry.applyWrites(writes);
		const { own, others } = await usecOf('fcall');
		// The first two rounds warm Redis and load the library.
		if (round >= 2) perWrite[kind].push((own - others) / WRITES);
	}
}
for (const [kind, values] of Object.entries(perWrite)) console.log(`${kind.padEnd(8)} ${median(values).toFixed(2)} µs per write in Lua, beyond its commands (median of ${values.length} batches)`);

for (let index = 1; index <= WRITES; index++) await client.hset(`floor:${index}`, 'moduleId', 'bench', 'status', 'queued', 'createdAt', '1795688639680', 'updatedAt', '1795688639680');
const floor: number[] = [];
for (let round = 0; round < 5; round++) {
	await admin.config('RESETSTAT');
	await client.eval(
		`#!lua
for i = 1, ${WRITES} do
	local key = 'floor:' .. i
	redis.call('HMGET', key, 'status', 'moduleId', 'itemId', 'ownerId', 'createdAt', 'updatedAt', 'completedAt')
	redis.call('HSET', key, 'status', 'running', 'updatedAt', '1795688639681', 'startedAt', '1795688639681')
end
return 1`,
		0,
	);
	const { own, others } = await usecOf('eval');
	if (round >= 1) floor.push((own - others) / WRITES);
}
console.log(`floor    ${median(floor).toFixed(2)} µs per HMGET + HSET pair in Lua, beyond the two commands`);

client.disconnect();
admin.disconnect();
await server.stop();

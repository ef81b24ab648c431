/**
 * What one script call costs inside Redis in each of the registry's two forms: FCALL of the
 * function library, and EVALSHA of the EVAL form (lib.lua prepended). `count` running runs are
 * cancelled one at a time with update-run (a compare-and-set that publishes, as `cancelTask` of a
 * run held elsewhere does), the two forms alternated; each call's own duration is read from
 * SLOWLOG (threshold 0). Twice: back to back ("warm"), and with 1 ms of idle before each call
 * ("after idle", as a cancel usually arrives). Runs on this benchmark's own redis-server.
 *
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/script-call-cost.ts [count]
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis } from 'ioredis';

import { RedisRunRegistry } from '../../src/redis/index.js';
import { scriptKeys } from '../../src/redis/keys.js';
import { LIBRARY, SCRIPTS } from '../../src/redis/scripts.js';
import { startRedisServer } from '../redis-server.js';
import { quantile } from '../stats.js';

const count = Number(process.argv[2] ?? 2000);
const server = await startRedisServer();
const client = new Redis(server.url);
const admin = new Redis(server.url);
const subscriber = new Redis(server.url);
await subscriber.subscribe('bench:cancel');
await client.call('FUNCTION', 'LOAD', LIBRARY.source);
await client.script('LOAD', SCRIPTS.updateRun.source);

for (const idleMs of [0, 1]) {
	const prefix = `cost${idleMs}`;
	const registry = new RedisRunRegistry({ client, prefix });
	const runIds: string[] = [];
	for (let index = 0; index < count; index++) {
		const now = Date.now();
		const run = { runId: `run-${index}`, moduleId: 'm', priority: 'normal', parameters: {}, status: 'running', ownerId: 'o', createdAt: now, updatedAt: now, startedAt: now } as const;
		await registry.addRun(run);
		runIds.push(run.runId);
	}
	const { keys, args: common } = scriptKeys(registry.keys);
	await admin.config('SET', 'slowlog-log-slower-than', '0');
	await admin.config('SET', 'slowlog-max-len', String(count * 20));
	await admin.slowlog('RESET');
	for (const [index, runId] of runIds.entries()) {
		const args = [...common, '', 'bench:cancel', JSON.stringify({ type: 'cancel', runId }), runId, 'queued,running', 'cancelled', '', 'completedAt', String(Date.now())];
		if (index % 2 === 0) await client.call('FCALL', SCRIPTS.updateRun.functionName, keys.length, ...keys, ...args);
		else await client.evalsha(SCRIPTS.updateRun.sha, keys.length, ...keys, ...args);
		if (idleMs > 0) await sleep(idleMs);
	}
	const log = (await admin.slowlog('GET', count * 20)) as Array<[number, number, number, string[]]>;
	const micros = (command: string): number[] => log.filter((entry) => entry[3][0]?.toLowerCase() === command).map((entry) => entry[2]);
	const [fcall, evalsha] = [micros('fcall'), micros('evalsha')];
	const row = (values: number[]): string => `p50 ${quantile(values, 0.5).toFixed(0).padStart(4)} µs, p90 ${quantile(values, 0.9).toFixed(0).padStart(4)} µs (${values.length} calls)`;
	console.log(`${idleMs === 0 ? 'warm' : `after ${idleMs} ms idle`}:`);
	console.log(`  FCALL   ${row(fcall)}`);
	console.log(`  EVALSHA ${row(evalsha)}`);
	console.log(`  FCALL / EVALSHA at p50: ${(quantile(fcall, 0.5) / quantile(evalsha, 0.5)).toFixed(2)}`);
}

subscriber.disconnect();
client.disconnect();
admin.disconnect();
await server.stop();

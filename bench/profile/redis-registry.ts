/**
 * RedisRunRegistry alone, without a manager: what one run costs the registry. `count` runs, each
 * written as the manager writes them at concurrency 16 (addRun QUEUED, updateRun RUNNING with
 * `ifStatus: 'queued'`, updateRun COMPLETED with a result and `ifStatus: 'running'`), by
 * `loops` loops that each await one write before the next, on this benchmark's own redis-server.
 * Prints, per run: the commands executed in Redis (every one, from `INFO commandstats`), the
 * time Redis spent in the scripts (`usec` of FCALL), the client's CPU time, and the
 * `used_memory` delta with the runs left in Redis.
 *
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/redis-registry.ts [count] [--ttl] [--owner] [--rounds=N]
 */
import { Redis } from 'ioredis';

import { RedisRunRegistry } from '../../src/redis/index.js';
import { commandStats, diffCounts, total, usedMemory } from '../redis-commands.js';
import { startRedisServer } from '../redis-server.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 10_000);
const ttl = args.includes('--ttl');
const owner = args.includes('--owner');
const rounds = Number(args.find((arg) => arg.startsWith('--rounds='))?.slice('--rounds='.length) ?? 3);
const loops = 16;

const server = await startRedisServer();
const admin = new Redis(server.url);
const client = new Redis(server.url);
const registry = new RedisRunRegistry({ client, prefix: 'bench', ...(ttl ? { terminalTtlMs: 86_400_000 } : {}) });

async function usecOf(command: string): Promise<{ calls: number; usec: number }> {
	const match = new RegExp(`^cmdstat_${command}:calls=(\\d+),usec=(\\d+)`, 'm').exec(await admin.info('commandstats'));
	return { calls: Number(match?.[1] ?? 0), usec: Number(match?.[2] ?? 0) };
}

async function round(size: number, label: string): Promise<void> {
	await admin.flushdb();
	await admin.config('RESETSTAT');
	const memoryBefore = await usedMemory(admin);
	const statsBefore = await commandStats(admin);
	const scriptBefore = await usecOf('fcall');
	const cpuBefore = process.cpuUsage();
	const start = process.hrtime.bigint();
	let next = 0;
	await Promise.all(
		Array.from({ length: loops }, async () => {
			while (next < size) {
				const index = next++;
				const runId = `bench-run-${index.toString().padStart(11, '0')}`;
				const now = Date.now();
				await registry.addRun({ runId, moduleId: 'bench', status: 'queued', priority: 'normal', parameters: {}, createdAt: now, updatedAt: now, ...(owner ? { ownerId: 'bench-instance' } : {}) });
				const running = await registry.updateRun(runId, { status: 'running', startedAt: Date.now() }, { ifStatus: 'queued' });
				if (running?.status !== 'running') throw new Error(`${runId}: not running`);
				const completed = await registry.updateRun(runId, { status: 'completed', completedAt: Date.now(), result: 1 }, { ifStatus: 'running' });
				if (completed?.status !== 'completed' || completed.result !== 1) throw new Error(`${runId}: not completed`);
			}
		}),
	);
	const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
	const cpu = process.cpuUsage(cpuBefore);
	const scriptAfter = await usecOf('fcall');
	const delta = diffCounts(statsBefore, await commandStats(admin));
	delta.delete('info');
	delta.delete('config');
	const memoryAfter = await usedMemory(admin);
	const commands = [...delta].sort((a, b) => b[1] - a[1]).map(([name, calls]) => `${name} ${(calls / size).toFixed(2)}`);
	console.log(
		`${label}: ${Math.round(size / elapsed)} runs/s; ${(total(delta) / size).toFixed(2)} commands in Redis per run (${commands.join(', ')}); ` +
			`scripts ${((scriptAfter.usec - scriptBefore.usec) / size).toFixed(1)} µs in Redis per run; client CPU ${((cpu.user + cpu.system) / size).toFixed(1)} µs per run; ` +
			`${Math.round((memoryAfter - memoryBefore) / size)} bytes per run`,
	);
}

try {
	console.log(`RedisRunRegistry alone, ${count} runs, ${loops} loops${ttl ? ', terminalTtlMs' : ''}${owner ? ', ownerId' : ''}`);
	await round(Math.max(100, Math.floor(count / 10)), 'warm-up');
	for (let index = 1; index <= rounds; index++) await round(count, `round ${index}/${rounds}`);
	const [sample] = (await registry.listRuns({ limit: 1 })).runs;
	if (sample !== undefined) console.log(`MEMORY USAGE of one run hash: ${String(await client.memory('USAGE', registry.keys.run(sample.runId)))} bytes; HGETALL: ${JSON.stringify(await client.hgetall(registry.keys.run(sample.runId)))}`);
} finally {
	await admin.quit();
	await client.quit();
	await server.stop();
}

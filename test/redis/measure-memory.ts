/**
 * Measures what runs cost in Redis: adds 10,000 runs through RedisRunRegistry (each queued, then
 * running, then completed, with small parameters and result, a module, an item and an owner) and
 * prints the `used_memory` delta per run, and `MEMORY USAGE` of one run hash.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx --import ./scripts/lua-hooks.mjs test/redis/measure-memory.ts
 *
 * Use an empty, otherwise idle server: it flushes nothing, but other traffic skews the delta.
 */
import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { RedisRunRegistry } from '../../src/redis/index.js';

const RUNS = 10_000;
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const client = new Redis(url);
const prefix = `measure-${randomUUID().slice(0, 8)}`;
const registry = new RedisRunRegistry({ client, prefix });

const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);

const before = await usedMemory();
const now = Date.now();
for (let start = 0; start < RUNS; start += 500) {
	await Promise.all(
		Array.from({ length: 500 }, async (_, offset) => {
			const index = start + offset;
			const runId = `run-${index.toString().padStart(6, '0')}-${randomUUID().slice(0, 8)}`;
			await registry.addRun({
				runId,
				moduleId: `module-${index % 10}`,
				itemId: `chat-${index % 1_000}`,
				ownerId: `instance-${index % 4}`,
				status: 'queued',
				priority: 'normal',
				parameters: { template: 'intro', frames: 480, user: `user-${index}` },
				createdAt: now + index,
				updatedAt: now + index,
			});
			await registry.updateRun(runId, { status: 'running', startedAt: Date.now() }, { ifStatus: 'queued' });
			await registry.updateRun(runId, { progress: { percent: 50, message: 'frame 240' } }, { ifStatus: 'running' });
			await registry.updateRun(runId, { status: 'completed', completedAt: Date.now(), progress: { percent: 100 }, result: { url: `https://cdn.example.com/${runId}.mp4` } }, { ifStatus: 'running' });
		}),
	);
}
const after = await usedMemory();
const [sample] = (await registry.listRuns({ limit: 1 })).runs;
const oneRun = sample === undefined ? 0 : Number(await client.memory('USAGE', `${prefix}:run:${sample.runId}`));
console.log(`${RUNS} completed runs: used_memory +${after - before} bytes, ${Math.round((after - before) / RUNS)} bytes per run (indexes included)`);
console.log(`MEMORY USAGE of one run hash: ${oneRun} bytes`);

// Leave the server as it was.
let removed = 0;
for (;;) {
	const { runs } = await registry.listRuns({ limit: 1_000 });
	if (runs.length === 0) break;
	for (const run of runs) removed += Number(await registry.deleteRun(run.runId));
}
console.log(`removed ${removed} runs`);
await client.quit();

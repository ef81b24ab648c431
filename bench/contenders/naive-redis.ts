/**
 * The naive Redis tracker of issue 5: one hash per run, three HSETs per run (queued when started,
 * running when it gets a slot, completed at the end), sent without waiting for each other so that
 * ioredis pipelines them on the connection; p-limit(16). No indexes, no compare-and-set, no atomicity.
 */
import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';
import pLimit from 'p-limit';

import type { RedisContender } from '../redis.js';
import { trivialTask } from '../workload.js';

export const naiveRedisContender: RedisContender = {
	key: 'naive-redis',
	label: 'naive ioredis tracker: 3 pipelined HSETs per run, p-limit(16)',
	async prepare(port, count) {
		const client = new Redis({ host: '127.0.0.1', port });
		const limit = pLimit(16);
		await client.ping();
		return {
			run: async () => {
				const runs = new Array<Promise<unknown>>(count);
				for (let index = 0; index < count; index++) {
					const key = `naive:run:${randomUUID()}`;
					const queued = client.hset(key, 'status', 'queued', 'moduleId', 'bench', 'createdAt', Date.now());
					runs[index] = limit(async () => {
						const running = client.hset(key, 'status', 'running', 'startedAt', Date.now());
						const result = await trivialTask();
						await Promise.all([queued, running, client.hset(key, 'status', 'completed', 'completedAt', Date.now(), 'result', JSON.stringify(result))]);
					});
				}
				await Promise.all(runs);
			},
			teardown: async () => {
				await client.quit();
			},
		};
	},
};

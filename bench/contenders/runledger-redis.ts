/** runledger on RedisRunRegistry, concurrency 16, a listener on every event. */
import { Redis } from 'ioredis';

import { BackgroundTaskManager } from '../../src/index.js';
import { RedisRunRegistry } from '../../src/redis/index.js';
import type { RedisContender } from '../redis.js';
import { LIFECYCLE_EVENTS } from './naive-tracker.js';
import { runMemory } from './runledger-memory.js';

export function runledgerRedisContender(options: { readonly instanceId?: string } = {}): RedisContender {
	const owned = options.instanceId !== undefined;
	return {
		key: owned ? 'runledger-redis+owner' : 'runledger-redis',
		label: owned ? 'runledger, RedisRunRegistry, concurrency 16, with `instanceId` (owner index and active set kept)' : 'runledger, RedisRunRegistry, concurrency 16',
		async prepare(port, count) {
			const client = new Redis({ host: '127.0.0.1', port });
			await client.ping();
			const registry = new RedisRunRegistry({ client, prefix: 'bench' });
			const manager = new BackgroundTaskManager(registry, { concurrency: 16, ...(owned ? { instanceId: options.instanceId } : {}) });
			let events = 0;
			for (const event of LIFECYCLE_EVENTS) manager.on(event, () => void events++);
			let errors = 0;
			manager.on('error', () => void errors++);
			return {
				run: async () => {
					await runMemory(manager, count);
					if (errors > 0) throw new Error(`runledger-redis: ${errors} errors`);
					if (events !== count * 3) throw new Error(`runledger-redis: ${events} events for ${count} runs`);
				},
				teardown: async () => {
					await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
					await client.quit();
				},
				closedLoop: async (submitters: number, perSubmitter: number) => {
					await Promise.all(
						Array.from({ length: submitters }, async () => {
							for (let index = 0; index < perSubmitter; index++) {
								const runId = manager.startTask({ moduleId: 'bench' }, async () => 1);
								await manager.waitForRun(runId);
							}
						}),
					);
				},
			};
		},
	};
}

/** BullMQ: a Queue and a Worker with concurrency 16, jobs `async () => 1`, BullMQ's defaults otherwise. */
import { Queue, Worker } from 'bullmq';

import type { RedisContender } from '../redis.js';

let queues = 0;

export const bullmqContender: RedisContender = {
	key: 'bullmq',
	label: 'BullMQ Queue + Worker (concurrency 16), defaults',
	async prepare(port, count) {
		const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
		const name = `bench-${queues++}`;
		const queue = new Queue(name, { connection });
		let completed = 0;
		let failed = 0;
		let finish: () => void = () => {};
		const finished = new Promise<void>((resolve) => (finish = resolve));
		const worker = new Worker(name, async () => 1, { connection, concurrency: 16 });
		worker.on('completed', () => {
			if (++completed + failed === count) finish();
		});
		worker.on('failed', () => {
			if (completed + ++failed === count) finish();
		});
		worker.on('error', () => {});
		await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
		return {
			// From the first add to the last completion.
			run: async () => {
				const adds = new Array<Promise<unknown>>(count);
				for (let index = 0; index < count; index++) adds[index] = queue.add('job', {});
				await Promise.all(adds);
				await finished;
				if (failed > 0) throw new Error(`bullmq: ${failed} jobs failed`);
			},
			teardown: async () => {
				await worker.close();
				await queue.close();
			},
		};
	},
};

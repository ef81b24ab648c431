/** p-queue: a priority queue with a concurrency limit. */
import PQueue from 'p-queue';

import { type Contender, trivialTask } from '../workload.js';

export function pQueueContender(concurrency: number): Contender {
	return {
		key: `p-queue(${concurrency})`,
		label: `p-queue(${concurrency})`,
		prepare(count) {
			const queue = new PQueue({ concurrency });
			return {
				run: async () => {
					for (let index = 0; index < count; index++) void queue.add(trivialTask);
					await queue.onIdle();
				},
			};
		},
	};
}

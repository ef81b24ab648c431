/** p-limit: a concurrency limit and nothing else. The baseline of the targets. */
import pLimit from 'p-limit';

import { type Contender, trivialTask } from '../workload.js';

export function pLimitContender(concurrency: number): Contender {
	const name = concurrency === Number.POSITIVE_INFINITY ? '∞' : String(concurrency);
	return {
		key: `p-limit(${name})`,
		label: `p-limit(${name})`,
		prepare(count) {
			const limit = pLimit(concurrency);
			return {
				run: async () => {
					const promises = new Array<Promise<number>>(count);
					for (let index = 0; index < count; index++) promises[index] = limit(trivialTask);
					await Promise.all(promises);
				},
			};
		},
	};
}

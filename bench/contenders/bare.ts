/** The reference: every task called at once, awaited with Promise.all. No limit, no tracking. */
import { type Contender, trivialTask } from '../workload.js';

export const bare: Contender = {
	key: 'bare',
	label: 'bare `Promise.all` (reference)',
	prepare(count) {
		return {
			run: async () => {
				const promises = new Array<Promise<number>>(count);
				for (let index = 0; index < count; index++) promises[index] = trivialTask();
				await Promise.all(promises);
			},
		};
	},
};

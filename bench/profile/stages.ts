/** Where a burst's time goes: the synchronous startTask calls, then the rest until waitAll resolves. */
import { BackgroundTaskManager, MemoryRunRegistry } from '../../src/index.js';
import { trivialTask } from '../workload.js';

const count = 100_000;
const variant = process.argv[2] ?? 'full';
for (let round = 0; round < 5; round++) {
	const registry = new MemoryRunRegistry({ maxRuns: 1_000_000 });
	const manager = new BackgroundTaskManager(registry, { concurrency: variant === 'unlimited' ? Number.POSITIVE_INFINITY : 16 });
	if (variant !== 'nolisten') for (const event of ['queued', 'started', 'completed', 'failed', 'cancelled'] as const) manager.on(event, () => {});
	const t0 = process.hrtime.bigint();
	for (let index = 0; index < count; index++) manager.startTask({ moduleId: 'bench' }, trivialTask);
	const t1 = process.hrtime.bigint();
	await manager.waitAll();
	const t2 = process.hrtime.bigint();
	console.log(`start ${(Number(t1 - t0) / 1e3 / count).toFixed(2)} µs, rest ${(Number(t2 - t1) / 1e3 / count).toFixed(2)} µs`);
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
}

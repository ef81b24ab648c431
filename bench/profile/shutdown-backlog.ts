/**
 * How long `shutdown({ graceMs: 0 })` takes with a backlog: `count` runs queued behind 16 running
 * ones, on a MemoryRunRegistry. Every queued run is cancelled and written CANCELLED.
 *
 *   node --import tsx bench/profile/shutdown-backlog.ts [count]
 */
import { BackgroundTaskManager, MemoryRunRegistry } from '../../src/index.js';

const count = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const never = (): Promise<void> => new Promise<void>(() => {});
for (let round = 0; round < 3; round++) {
	const manager = new BackgroundTaskManager(new MemoryRunRegistry({ maxRuns: count * 2 }), { concurrency: 16 });
	for (let index = 0; index < count + 16; index++) manager.startTask({ moduleId: 'bench' }, never);
	await new Promise((resolve) => setImmediate(resolve));
	const start = process.hrtime.bigint();
	const report = await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	const ms = Number(process.hrtime.bigint() - start) / 1e6;
	console.log(`round ${round + 1}: ${ms.toFixed(0)} ms for ${report.cancelled.length} cancelled, ${report.timedOut.length} timed out (${((ms * 1e3) / count).toFixed(1)} µs per queued run)`);
}

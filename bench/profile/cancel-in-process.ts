/**
 * A cancel inside one process: from `cancelTask(runId)` to the run's abort listener, on a
 * MemoryRunRegistry, for runs that read their signal when they start. The process side of a
 * cross-process cancel once the bus message has arrived (bench/profile/cancel-stages.ts times that
 * stage after idle, which this warm loop does not).
 *
 *   node --import tsx bench/profile/cancel-in-process.ts [count]
 */
import { BackgroundTaskManager, MemoryRunRegistry } from '../../src/index.js';
import { quantile } from '../stats.js';

const count = Number(process.argv[2] ?? 5000);
const warmUp = Math.floor(count / 5);
const hr = (): number => Number(process.hrtime.bigint());

const manager = new BackgroundTaskManager(new MemoryRunRegistry());
let abortedAt = 0;
const runIds: string[] = [];
for (let index = 0; index < count; index++) {
	runIds.push(
		manager.startTask({ moduleId: 'cancel' }, ({ signal }) => new Promise((_resolve, reject) => {
			signal.addEventListener('abort', () => {
				abortedAt = hr();
				reject(signal.reason);
			}, { once: true });
		})),
	);
}
await manager.flush();
await new Promise((resolve) => setImmediate(resolve));

const times: number[] = [];
for (const [index, runId] of runIds.entries()) {
	const start = hr();
	void manager.cancelTask(runId);
	if (index >= warmUp) times.push((abortedAt - start) / 1000);
	// Let the cancelled runs settle now and then, as a service would between requests.
	if (index % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
}
console.log(`cancelTask → abort listener, ${times.length} cancels: p50 ${quantile(times, 0.5).toFixed(1)} µs, p90 ${quantile(times, 0.9).toFixed(1)} µs`);
await manager.shutdown({ graceMs: 0 });

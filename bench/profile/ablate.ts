/**
 * How the memory contender's time splits: the same manager on a registry that stores nothing
 * (its synchronous writes return at once), with and without listeners, against p-limit(16).
 *
 *   node --expose-gc --import tsx bench/profile/ablate.ts [null|null-quiet|memory]
 */
import { BackgroundTaskManager, MemoryRunRegistry, type RunRegistry } from '../../src/index.js';
import { applyWriteNow, releaseSlot, type WriteSlot } from '../../src/registry-internals.js';
import { LIFECYCLE_EVENTS } from '../contenders/naive-tracker.js';
import { trivialTask } from '../workload.js';
import { alternateWithPLimit } from './alternate.js';

const variant = process.argv[2] ?? 'null';
const count = 100_000;
const APPLIED = Object.freeze({ outcome: 'applied' as const });

function nullRegistry(): RunRegistry {
	const registry = new MemoryRunRegistry();
	// Linked as the memory registry links them, so that the manager keeps no map of its own (see ActiveRuns).
	Object.defineProperty(registry, applyWriteNow, {
		value: (_write: unknown, slot: WriteSlot) => {
			if (slot.owner !== undefined) slot.linked = true;
			return APPLIED;
		},
	});
	Object.defineProperty(registry, releaseSlot, { value: (slot: WriteSlot) => (slot.linked = false) });
	return registry;
}

async function time(): Promise<number> {
	const registry = variant === 'memory' ? new MemoryRunRegistry({ maxRuns: 200_000 }) : nullRegistry();
	const manager = new BackgroundTaskManager(registry, { concurrency: 16 });
	if (variant !== 'null-quiet') for (const event of LIFECYCLE_EVENTS) manager.on(event, () => {});
	const start = process.hrtime.bigint();
	for (let index = 0; index < count; index++) manager.startTask({ moduleId: 'bench' }, trivialTask);
	await manager.waitAll();
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	return perTask;
}

await alternateWithPLimit({ count, concurrency: 16, rounds: 5, name: variant, contender: time });

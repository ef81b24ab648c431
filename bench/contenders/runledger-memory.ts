/**
 * runledger on its in-memory registry: the full lifecycle QUEUED → RUNNING → COMPLETED recorded
 * for every run, with one listener on every lifecycle event. Completion is `waitAll()`: every
 * task settled and every registry write landed.
 */
import { BackgroundTaskManager, MemoryRunRegistry } from '../../src/index.js';
import { LIFECYCLE_EVENTS } from './naive-tracker.js';
import { type Contender, trivialTask } from '../workload.js';

export interface RunledgerMemoryOptions {
	readonly concurrency: number;
	/** The registry's bound; large enough by default that eviction is not what is measured. */
	readonly maxRuns?: number;
	readonly key?: string;
	readonly label?: string;
}

const INPUT = { moduleId: 'bench' } as const;

/** A fresh manager and registry with a listener on every event; `events()` counts what it heard. */
export function createMemoryManager(concurrency: number, maxRuns: number): { manager: BackgroundTaskManager; registry: MemoryRunRegistry; events: () => number } {
	const registry = new MemoryRunRegistry({ maxRuns });
	const manager = new BackgroundTaskManager(registry, concurrency === Number.POSITIVE_INFINITY ? {} : { concurrency });
	let events = 0;
	const listener = (): void => {
		events++;
	};
	for (const event of LIFECYCLE_EVENTS) manager.on(event, listener);
	return { manager, registry, events: () => events };
}

/** Starts `count` trivial runs and waits until all are settled and written. */
export async function runMemory(manager: BackgroundTaskManager, count: number, task: () => Promise<unknown> = trivialTask): Promise<void> {
	for (let index = 0; index < count; index++) manager.startTask(INPUT, task);
	const report = await manager.waitAll();
	if (!report.settled) throw new Error('runledger: waitAll did not settle');
}

export function runledgerMemoryContender(options: RunledgerMemoryOptions): Contender {
	const { concurrency } = options;
	const name = concurrency === Number.POSITIVE_INFINITY ? '∞' : String(concurrency);
	return {
		key: options.key ?? `runledger(${name})`,
		label: options.label ?? `runledger, MemoryRunRegistry, concurrency ${name === '∞' ? 'unlimited' : name}, listener on every event`,
		prepare(count) {
			const { manager, registry, events } = createMemoryManager(concurrency, options.maxRuns ?? Math.max(200_000, count * 2));
			return {
				run: async () => {
					await runMemory(manager, count);
					if (events() !== count * 3) throw new Error(`runledger: ${events()} events for ${count} tasks`);
					// Active runs are never evicted, and a burst is all active at first: a bounded registry may still hold them all.
					if (registry.size < Math.min(count, registry.maxRuns) || registry.size > count) throw new Error(`runledger: ${registry.size} runs stored for ${count} tasks`);
				},
				teardown: async () => {
					await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
				},
			};
		},
	};
}

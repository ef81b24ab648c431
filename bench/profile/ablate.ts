/**
 * How the memory contender's time splits: the same manager on a registry that stores nothing
 * (its synchronous writes return at once), with and without listeners, on the typed-array sketch
 * of `typed-store.ts` (a floor for a registry that stores runs and their status indexes), and on
 * MemoryRunRegistry — each against p-limit(16), all in one process, per round in rotated order.
 *
 *   node --expose-gc --import tsx bench/profile/ablate.ts [null|null-quiet|typed|memory ...] [--rounds=N]
 */
import { BackgroundTaskManager, MemoryRunRegistry, type RunRegistry } from '../../src/index.js';
import { applyWriteNow, releaseSlot, type WriteSlot } from '../../src/registry-internals.js';
import { LIFECYCLE_EVENTS } from '../contenders/naive-tracker.js';
import { runMemory } from '../contenders/runledger-memory.js';
import { median } from '../stats.js';
import { timePLimit } from './alternate.js';
import { typedStoreRegistry } from './typed-store.js';

const VARIANTS = ['null', 'null-quiet', 'typed', 'memory'] as const;
type Variant = (typeof VARIANTS)[number];
const args = process.argv.slice(2);
const chosen = args.filter((arg) => !arg.startsWith('--'));
for (const name of chosen) if (!(VARIANTS as readonly string[]).includes(name)) throw new Error(`unknown variant ${name}: one of ${VARIANTS.join(', ')}`);
const variants = (chosen.length === 0 ? ['null'] : chosen) as Variant[];
const rounds = Number(args.find((arg) => arg.startsWith('--rounds='))?.slice('--rounds='.length) ?? 5);
const count = 100_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
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

function registryFor(variant: Variant): RunRegistry {
	if (variant === 'memory') return new MemoryRunRegistry({ maxRuns: 200_000 });
	if (variant === 'typed') return typedStoreRegistry();
	return nullRegistry();
}

async function time(variant: Variant): Promise<number> {
	const manager = new BackgroundTaskManager(registryFor(variant), { concurrency: 16 });
	if (variant !== 'null-quiet') for (const event of LIFECYCLE_EVENTS) manager.on(event, () => {});
	const start = process.hrtime.bigint();
	await runMemory(manager, count);
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	return perTask;
}

// One warm-up of each, then rounds in rotated order; ratios against the round's p-limit(16).
const contenders: Array<'p-limit' | Variant> = ['p-limit', ...variants];
const run = (name: 'p-limit' | Variant): Promise<number> => (name === 'p-limit' ? timePLimit(count, 16) : time(name));
for (const name of contenders) await run(name);
const ratios = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
for (let round = 0; round < rounds; round++) {
	const times = new Map<string, number>();
	for (let turn = 0; turn < contenders.length; turn++) {
		const name = contenders[(round + turn) % contenders.length] as 'p-limit' | Variant;
		gc();
		times.set(name, await run(name));
	}
	const base = times.get('p-limit') as number;
	const line = variants.map((variant) => {
		const ratio = (times.get(variant) as number) / base;
		ratios.get(variant)?.push(ratio);
		return `${variant} ${ratio.toFixed(2)}×`;
	});
	console.log(`round ${round + 1}: p-limit(16) ${base.toFixed(2)} µs; ${line.join(', ')}`);
}
for (const variant of variants) {
	const values = ratios.get(variant) as number[];
	console.log(`${variant}: median ${median(values).toFixed(2)}× p-limit(16) (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}), ${rounds} rounds`);
}

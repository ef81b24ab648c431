/**
 * The typed-array storage of `typed-store.ts` (a sketch, not the library) against
 * `MemoryRunRegistry` on a burst's writes, alternated in one process.
 *
 * Both do a registry's work for a manager at concurrency 16: 100,000 adds (ids included), then
 * each run's start and completion as compare-and-sets that move it between status indexes, 16
 * running at a time; both keep the runs. The registry is given its write objects and slots (a
 * manager makes those anyway), the sketch none, and the sketch leaves out much of the contract:
 * what it saves is an upper bound. A registry built on columns to the whole contract was no faster
 * than the object design (docs/benchmarks.md, *The storage route, built and measured*);
 * `ablate.ts typed` puts the sketch under a manager.
 *
 *   node --expose-gc --import tsx bench/profile/typed-store-sketch.ts
 */
import { MemoryRunRegistry, type RunRegistry } from '../../src/index.js';
import { type NewRunId, type WriteNow, type WriteSlot, applyWriteNow, newRunId } from '../../src/registry-internals.js';
import { median } from '../stats.js';
import { TypedStore } from './typed-store.js';

const count = 100_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const COMPLETED = 2;

function timeSketch(): number {
	const store = new TypedStore();
	const start = process.hrtime.bigint();
	const now = Date.now();
	// The same run and patch objects as the registry is given below (a manager makes them anyway:
	// they are its views and patches); only the registry's write wrappers are left out.
	for (let index = 0; index < count; index++) store.add({ runId: store.newId(), moduleId: 'bench', status: 'queued', priority: 'normal', parameters: undefined, createdAt: now, updatedAt: now });
	for (let index = 0; index < count + 16; index++) {
		if (index < count && !store.update(index, { status: 'running', startedAt: now }, 'queued')) throw new Error('start missed');
		if (index >= 16 && !store.update(index - 16, { status: 'completed', completedAt: now, result: 1 }, 'running')) throw new Error('completion missed');
	}
	const perRun = Number(process.hrtime.bigint() - start) / 1e3 / count;
	if (store.byStatus[COMPLETED]!.size !== count) throw new Error('sketch lost runs');
	return perRun;
}

function timeRegistry(): number {
	const registry = new MemoryRunRegistry({ maxRuns: 200_000 }) as RunRegistry & Record<typeof applyWriteNow, WriteNow> & Record<typeof newRunId, NewRunId>;
	const owner = {};
	const slots: WriteSlot[] = [];
	const start = process.hrtime.bigint();
	const now = Date.now();
	for (let index = 0; index < count; index++) {
		const runId = registry[newRunId]();
		const slot: WriteSlot = { runId, handle: undefined, freshId: true, owner, linked: false };
		slots.push(slot);
		registry[applyWriteNow]({ type: 'add', run: { runId, moduleId: 'bench', status: 'queued', priority: 'normal', parameters: undefined, createdAt: now, updatedAt: now } }, slot);
	}
	for (let index = 0; index < count + 16; index++) {
		if (index < count && registry[applyWriteNow]({ type: 'update', runId: slots[index]!.runId, patch: { status: 'running', startedAt: now }, ifStatus: 'queued' }, slots[index]!).outcome !== 'applied') throw new Error('start missed');
		if (index >= 16 && registry[applyWriteNow]({ type: 'update', runId: slots[index - 16]!.runId, patch: { status: 'completed', completedAt: now, result: 1 }, ifStatus: 'running' }, slots[index - 16]!).outcome !== 'applied') throw new Error('completion missed');
	}
	return Number(process.hrtime.bigint() - start) / 1e3 / count;
}

for (let warm = 0; warm < 3; warm++) {
	timeSketch();
	timeRegistry();
}
const sketch: number[] = [];
const registry: number[] = [];
for (let round = 0; round < 11; round++) {
	gc();
	if (round % 2 === 0) sketch.push(timeSketch());
	gc();
	registry.push(timeRegistry());
	if (round % 2 === 1) {
		gc();
		sketch.push(timeSketch());
	}
}
console.log(`MemoryRunRegistry: ${median(registry).toFixed(2)} µs per run; typed-array sketch: ${median(sketch).toFixed(2)} µs per run (medians of 11 rounds; add + start + completion, runs kept)`);

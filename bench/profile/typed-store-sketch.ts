/**
 * What the route left for the memory targets could gain: a sketch (not the library) of the memory
 * registry's storage as typed arrays — one slot per run, fields in columns, each status index a
 * growing list of slot numbers (slots are handed out in creation order, so appending keeps a list
 * sorted by creation) — against `MemoryRunRegistry` on the same writes, alternated in one process.
 *
 * Both do a registry's work for a manager at concurrency 16: 100,000 adds (ids included), then
 * each run's start and completion as compare-and-sets that move it between status indexes, 16
 * running at a time; both keep the runs. The sketch leaves out what it would still have to do —
 * copies of user values, the module, item and owner indexes beyond one module, eviction, reading
 * a run back, paging — so its figure is a floor for that design, not a measure of it.
 *
 *   node --expose-gc --import tsx bench/profile/typed-store-sketch.ts
 */
import { MemoryRunRegistry, type Run, type RunRegistry } from '../../src/index.js';
import { type NewRunId, type WriteNow, type WriteSlot, applyWriteNow, newRunId } from '../../src/registry-internals.js';
import { generateSlotRunId } from '../../src/run-id.js';
import { median } from '../stats.js';

const count = 100_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const QUEUED = 0;
const RUNNING = 1;
const COMPLETED = 2;
const CODES: Readonly<Record<string, number>> = { queued: QUEUED, running: RUNNING, completed: COMPLETED };

// A list of slot numbers that grows by doubling; removal counts a slot dead (read past by its status).
class SlotList {
	items = new Int32Array(1024);
	length = 0;
	dead = 0;

	push(slot: number): void {
		if (this.length === this.items.length) {
			const grown = new Int32Array(this.items.length * 2);
			grown.set(this.items);
			this.items = grown;
		}
		this.items[this.length++] = slot;
	}

	// Drops the slots that left once they outnumber those that stay.
	leave(isLive: (slot: number) => boolean): void {
		this.dead++;
		if (this.dead * 2 <= this.length) return;
		let kept = 0;
		for (let index = 0; index < this.length; index++) {
			const slot = this.items[index] as number;
			if (isLive(slot)) this.items[kept++] = slot;
		}
		this.length = kept;
		this.dead = 0;
	}
}

class TypedStore {
	ids: string[] = [];
	status = new Uint8Array(1024);
	created = new Float64Array(1024);
	updated = new Float64Array(1024);
	started = new Float64Array(1024);
	completed = new Float64Array(1024);
	results: unknown[] = [];
	readonly byStatus = [new SlotList(), new SlotList(), new SlotList()];
	readonly byModule = new SlotList();
	readonly ended = new SlotList();
	size = 0;
	readonly #live = [(slot: number) => this.status[slot] === QUEUED, (slot: number) => this.status[slot] === RUNNING, (slot: number) => this.status[slot] === COMPLETED];

	// `run` as a manager hands it over (its view); the id is the store's, as the memory registry's are.
	add(run: Run): number {
		const slot = this.size++;
		if (slot === this.status.length) this.#grow();
		this.ids.push(generateSlotRunId(slot));
		this.status[slot] = CODES[run.status] as number;
		this.created[slot] = run.createdAt;
		this.updated[slot] = run.updatedAt;
		this.byStatus[QUEUED]!.push(slot);
		this.byModule.push(slot);
		return slot;
	}

	// A compare-and-set of `patch` (as a manager hands it over): false when the run is not in `ifStatus`.
	update(slot: number, patch: { readonly status: string; readonly startedAt?: number; readonly completedAt?: number; readonly result?: unknown }, ifStatus: string): boolean {
		const from = CODES[ifStatus] as number;
		const to = CODES[patch.status] as number;
		if (this.status[slot] !== from) return false;
		this.status[slot] = to;
		const at = patch.completedAt ?? patch.startedAt ?? Date.now();
		this.updated[slot] = at;
		if (patch.startedAt !== undefined) this.started[slot] = patch.startedAt;
		if (patch.completedAt !== undefined) this.completed[slot] = patch.completedAt;
		if (patch.result !== undefined) this.results[slot] = patch.result;
		this.byStatus[from]!.leave(this.#live[from]!);
		this.byStatus[to]!.push(slot);
		if (to === COMPLETED) this.ended.push(slot);
		return true;
	}

	#grow(): void {
		const size = this.status.length * 2;
		const grow = <T extends Uint8Array | Float64Array>(array: T, make: (length: number) => T): T => {
			const grown = make(size);
			grown.set(array);
			return grown;
		};
		this.status = grow(this.status, (length) => new Uint8Array(length));
		this.created = grow(this.created, (length) => new Float64Array(length));
		this.updated = grow(this.updated, (length) => new Float64Array(length));
		this.started = grow(this.started, (length) => new Float64Array(length));
		this.completed = grow(this.completed, (length) => new Float64Array(length));
	}
}

function timeSketch(): number {
	const store = new TypedStore();
	const start = process.hrtime.bigint();
	const now = Date.now();
	// The same run and patch objects as the registry is given below (a manager makes them anyway:
	// they are its views and patches); only the registry's write wrappers are left out.
	for (let index = 0; index < count; index++) store.add({ runId: '', moduleId: 'bench', status: 'queued', priority: 'normal', parameters: undefined, createdAt: now, updatedAt: now });
	for (let index = 0; index < count + 16; index++) {
		if (index < count && !store.update(index, { status: 'running', startedAt: now }, 'queued')) throw new Error('start missed');
		if (index >= 16 && !store.update(index - 16, { status: 'completed', completedAt: now, result: 1 }, 'running')) throw new Error('completion missed');
	}
	const perRun = Number(process.hrtime.bigint() - start) / 1e3 / count;
	if (store.byStatus[COMPLETED]!.length - store.byStatus[COMPLETED]!.dead !== count) throw new Error('sketch lost runs');
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

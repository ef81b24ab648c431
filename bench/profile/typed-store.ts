/**
 * A sketch (not the library) of the memory registry's storage as typed arrays: one slot per run,
 * fields in columns, each status index a growing list of slot numbers. Slots are handed out in
 * creation order and never reused, so appending keeps a list sorted by creation without a
 * comparison. It does the writes a manager makes of a run — the add, then compare-and-set
 * updates that move it between status indexes — and leaves out what a registry would still have
 * to do: copies of user values, the item and owner indexes, eviction, reading a run back, paging,
 * validation. So what it costs is a floor for that design, not a measure of it.
 *
 * Used by `typed-store-sketch.ts` (the writes alone, against MemoryRunRegistry) and `ablate.ts typed`
 * (under a manager, against p-limit(16)).
 */
import { MemoryRunRegistry, type Run, type RunPatch, type RunRegistry, type RunWrite } from '../../src/index.js';
import { applyWriteNow, newRunId, releaseSlot, type WriteSlot } from '../../src/registry-internals.js';
import { generateSlotRunId } from '../../src/run-id.js';

const CODES: Readonly<Record<string, number>> = { queued: 0, running: 1, completed: 2, failed: 3, cancelled: 4 };
const FIRST_TERMINAL = CODES.completed as number;
const APPLIED = Object.freeze({ outcome: 'applied' as const });
const MISSED = Object.freeze({ outcome: 'missed' as const });

/** A list of slot numbers that grows by doubling; a slot that leaves is counted, and dropped once those outnumber the rest. */
class SlotList {
	items = new Int32Array(1024);
	length = 0;
	dead = 0;

	get size(): number {
		return this.length - this.dead;
	}

	push(slot: number): void {
		if (this.length === this.items.length) {
			const grown = new Int32Array(this.items.length * 2);
			grown.set(this.items);
			this.items = grown;
		}
		this.items[this.length++] = slot;
	}

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

export class TypedStore {
	ids: string[] = [];
	modules: string[] = [];
	parameters: unknown[] = [];
	results: unknown[] = [];
	status = new Uint8Array(1024);
	created = new Float64Array(1024);
	updated = new Float64Array(1024);
	started = new Float64Array(1024);
	completed = new Float64Array(1024);
	readonly byStatus = [new SlotList(), new SlotList(), new SlotList(), new SlotList(), new SlotList()];
	readonly byModule = new SlotList();
	readonly ended = new SlotList();
	size = 0;
	readonly #live = [0, 1, 2, 3, 4].map((code) => (slot: number) => this.status[slot] === code);

	/** An id naming the slot the next add takes, as the memory registry's ids do. */
	newId(): string {
		return generateSlotRunId(this.size);
	}

	/** Stores `run` (as a manager hands it over) in the next slot, and returns that slot. */
	add(run: Run): number {
		const slot = this.size++;
		if (slot === this.status.length) this.#grow();
		this.ids.push(run.runId);
		this.modules.push(run.moduleId);
		this.parameters.push(run.parameters);
		this.results.push(run.result);
		const code = CODES[run.status] as number;
		this.status[slot] = code;
		this.created[slot] = run.createdAt;
		this.updated[slot] = run.updatedAt;
		(this.byStatus[code] as SlotList).push(slot);
		this.byModule.push(slot);
		if (code >= FIRST_TERMINAL) this.ended.push(slot);
		return slot;
	}

	/** A compare-and-set of `patch`: false when the run is not in `ifStatus`. */
	update(slot: number, patch: RunPatch, ifStatus: string | undefined): boolean {
		const from = this.status[slot] as number;
		if (ifStatus !== undefined && CODES[ifStatus] !== from) return false;
		const to = patch.status === undefined ? from : (CODES[patch.status] as number);
		this.status[slot] = to;
		this.updated[slot] = patch.completedAt ?? patch.startedAt ?? Date.now();
		if (patch.startedAt !== undefined) this.started[slot] = patch.startedAt;
		if (patch.completedAt !== undefined) this.completed[slot] = patch.completedAt;
		if (patch.result !== undefined) this.results[slot] = patch.result;
		if (to !== from) {
			(this.byStatus[from] as SlotList).leave(this.#live[from] as (slot: number) => boolean);
			(this.byStatus[to] as SlotList).push(slot);
			if (to >= FIRST_TERMINAL) this.ended.push(slot);
		}
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

/**
 * A registry for a manager whose writes go to a {@link TypedStore}, linked as the memory registry
 * links them (the manager then keeps no map of its own). Only a manager's in-process writes work:
 * its other methods are the (empty) MemoryRunRegistry's.
 */
export function typedStoreRegistry(): RunRegistry {
	const registry = new MemoryRunRegistry();
	const store = new TypedStore();
	Object.defineProperty(registry, newRunId, { value: () => store.newId() });
	Object.defineProperty(registry, applyWriteNow, {
		value: (write: RunWrite, slot: WriteSlot) => {
			try {
				if (write.type === 'add') {
					slot.handle = store.add(write.run);
					if (slot.owner !== undefined) slot.linked = true;
					return APPLIED;
				}
				return store.update(slot.handle as number, write.patch, write.ifStatus as string | undefined) ? APPLIED : MISSED;
			} catch (error) {
				return { outcome: 'failed', error };
			}
		},
	});
	Object.defineProperty(registry, releaseSlot, { value: (slot: WriteSlot) => (slot.linked = false) });
	return registry;
}

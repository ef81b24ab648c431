/**
 * The in-memory registry's runs by id. Ids the registry hands out itself ({@link RunTable.newId},
 * used by managers for the runs they create) name a slot of an array, so storing and finding
 * those runs is an array access: no hashing, and in a burst of new runs the array is written in
 * order. On this kind of machine an insert into a `Map` of 100,000 runs costs 0.5–1 µs of cache
 * misses, the largest single cost of recording a run. Runs under any other id (chosen by the
 * caller, made elsewhere) are kept in a `Map`.
 */
import { SLOT_COUNT, generateRunId, generateSlotRunId, slotOfRunId } from '../run-id.js';

interface Keyed {
	readonly runId: string;
}

export class RunTable<T extends Keyed> {
	// Entries stored under a slot id: `#slots[slotOfRunId(entry.runId)] === entry`.
	readonly #slots: Array<T | undefined> = [];
	// Free slots below `#slots.length`, the last freed on top: the next slot id names the top one.
	readonly #free: number[] = [];
	// Every other entry, by id. An id is never in both places.
	readonly #others = new Map<string, T>();
	#size = 0;

	get size(): number {
		return this.#size;
	}

	/**
	 * A new id (96 random bits) naming the slot the next {@link set} of an entry under it will use,
	 * or a plain random id once every slot is taken. Taking an id reserves nothing: an id that
	 * is never stored costs nothing, and the next one names the same slot.
	 */
	newId(): string {
		const slot = this.#nextSlot();
		return slot < SLOT_COUNT ? generateSlotRunId(slot) : generateRunId();
	}

	get(runId: string): T | undefined {
		const slot = slotOfRunId(runId);
		if (slot >= 0) {
			const entry = this.#slots[slot];
			if (entry !== undefined && entry.runId === runId) return entry;
		}

		return this.#others.size === 0 ? undefined : this.#others.get(runId);
	}

	has(runId: string): boolean {
		return this.get(runId) !== undefined;
	}

	/** Stores `entry`, whose id must not be stored yet. */
	set(entry: T): void {
		const slot = slotOfRunId(entry.runId);
		// Only the slot the next new id names: any other may be named by an id handed out later.
		// (Never a slot past the last, as ids name at most SLOT_COUNT of them; -1 is no slot id.)
		if (slot === this.#nextSlot()) {
			if (slot === this.#slots.length) this.#slots.push(entry);
			else {
				this.#free.pop();
				this.#slots[slot] = entry;
			}
		} else {
			this.#others.set(entry.runId, entry);
		}

		this.#size++;
	}

	/** Removes `entry`, which must be stored. */
	delete(entry: T): void {
		const slot = slotOfRunId(entry.runId);
		if (slot >= 0 && this.#slots[slot] === entry) {
			this.#slots[slot] = undefined;
			this.#free.push(slot);
		} else {
			this.#others.delete(entry.runId);
		}

		this.#size--;
	}

	#nextSlot(): number {
		const free = this.#free;
		return free.length === 0 ? this.#slots.length : (free[free.length - 1] as number);
	}
}

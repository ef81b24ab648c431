/**
 * A sorted array with lazy removal: the structure behind each index bucket of
 * `MemoryRunRegistry`. Items are appended in the common case (keys mostly arrive in
 * order) and binary-search inserted otherwise. Removal only counts an item as dead; dead
 * items are skipped by readers and dropped in one pass once they outnumber the live ones,
 * so every operation stays amortized O(1) apart from the rare out-of-order insert.
 */
export class OrderedIndex<T extends K, K = T> {
	// Sorted ascending by #compare, no two items equal under it; slots before #head are spent.
	#items: T[] = [];
	// Slots before it were released by first() and are dropped at the next compaction.
	#head = 0;
	// How many items from #head on are dead: counted by markDead, un-counted by a re-insert.
	#dead = 0;
	// A total order: 0 only when both sides are the same item.
	readonly #compare: (a: T, b: T) => number;
	// The same order between an item and a probe (a key that may not be an item).
	readonly #compareKey: (item: T, probe: K) => number;
	// Whether an item still belongs here; the owner flips it before calling markDead.
	readonly #isLive: (item: T) => boolean;

	/**
	 * @param compare - Orders items ascending; must be 0 only for the same item.
	 * @param isLive - Whether an item still belongs to this index. Must turn false before
	 * `markDead()` is called for it, and stay true while it is live.
	 * @param compareKey - The same order between an item and a probe, for {@link lowerBound};
	 * `compare` when items are their own keys. (Two functions so that the one every insert calls
	 * can be specialised for items.)
	 */
	constructor(compare: (a: T, b: T) => number, isLive: (item: T) => boolean, compareKey: (item: T, probe: K) => number = compare as never) {
		this.#compare = compare;
		this.#isLive = isLive;
		this.#compareKey = compareKey;
	}

	/** How many live items the index holds. */
	get size(): number {
		return this.#items.length - this.#head - this.#dead;
	}

	/** How many slots the index retains, dead and spent ones included: never more than `2 × size`. */
	get retained(): number {
		return this.#items.length;
	}

	/** The first position in use. Positions run from `start` to `end - 1`. */
	get start(): number {
		return this.#head;
	}

	/** One past the last position in use. */
	get end(): number {
		return this.#items.length;
	}

	/** The item at `position` (from `start` to `end - 1`); it may be dead, see {@link holds}. */
	at(position: number): T {
		return this.#items[position] as T;
	}

	/** Whether `item` is live here. */
	holds(item: T): boolean {
		return this.#isLive(item);
	}

	/** The position of the first item not below `probe`, from `start` to `end`. */
	lowerBound(probe: K): number {
		const items = this.#items;
		let low = this.#head;
		let high = items.length;
		while (low < high) {
			const middle = (low + high) >>> 1;
			if (this.#compareKey(items[middle] as T, probe) < 0) low = middle + 1;
			else high = middle;
		}
		return low;
	}

	/** Adds `item`, which must be live by now; if it is still held as dead it simply counts as live again. */
	insert(item: T): void {
		const items = this.#items;
		if (items.length === 0) {
			// Sized for one: many buckets (an item's, say) only ever hold a run or two.
			this.#items = [item];
			return;
		}
		const last = items.length > this.#head ? (items[items.length - 1] as T) : undefined;
		if (last === undefined || this.#compare(last, item) < 0) {
			items.push(item);
			return;
		}
		const position = this.lowerBound(item);
		if (items[position] === item) {
			// Left earlier (say, its owner changed) and came back before a compaction dropped it.
			this.#dead--;
			return;
		}
		items.splice(position, 0, item);
	}

	/** Records that one held item has stopped being live; compacts when the dead outnumber the live. */
	markDead(): void {
		this.#dead++;
		if (this.#head + this.#dead > this.size) this.#compact();
	}

	/** The first live item, or `undefined`. Dead items in front are released on the way. */
	first(): T | undefined {
		const items = this.#items;
		while (this.#head < items.length) {
			const item = items[this.#head] as T;
			if (this.#isLive(item)) return item;
			this.#head++;
			this.#dead--;
		}
		return undefined;
	}

	// Drops the dead and spent slots, in place: the live items move to the front.
	#compact(): void {
		const items = this.#items;
		let kept = 0;
		for (let position = this.#head; position < items.length; position++) {
			const item = items[position] as T;
			if (this.#isLive(item)) items[kept++] = item;
		}
		items.length = kept;
		this.#head = 0;
		this.#dead = 0;
	}
}

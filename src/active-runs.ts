/**
 * The runs a manager holds (every run not yet done), in the order they were started, found by id.
 *
 * A registry that keeps the manager's record next to its own (the in-memory one, through
 * `findSlot`) finds a run by id itself: the manager then keeps no map of its own for it, which in
 * a burst of 100,000 runs saves a hash-table insert and delete per run. Runs that registry cannot
 * find — adopted ones, those whose first write failed, any run on another registry — are kept in
 * a map here.
 */
import type { Execution } from './execution.js';
import { type FindSlot, type ReleaseSlot, findSlot, releaseSlot } from './registry-internals.js';
import type { RunRegistry } from './registry.js';

export class ActiveRuns {
	// A list threaded through the runs (`Execution.previous` / `next`): order kept, no hashing.
	#first: Execution | undefined;
	#last: Execution | undefined;
	#size = 0;
	// The runs the registry cannot find by id.
	readonly #byId = new Map<string, Execution>();
	readonly #find: FindSlot | undefined;
	readonly #release: ReleaseSlot | undefined;

	constructor(registry: RunRegistry) {
		const capabilities = registry as Partial<Record<typeof findSlot, FindSlot> & Record<typeof releaseSlot, ReleaseSlot>>;
		const find = capabilities[findSlot];
		const release = capabilities[releaseSlot];
		if (typeof find === 'function' && typeof release === 'function') {
			this.#find = find.bind(registry);
			this.#release = release.bind(registry);
		}
	}

	/** What the manager's runs carry as their `owner` (see `WriteSlot`): this, when the registry can find runs by id. */
	get owner(): object | undefined {
		return this.#find === undefined ? undefined : this;
	}

	get size(): number {
		return this.#size;
	}

	/** Adds a run just started. Call {@link settle} once its first write was tried. */
	add(execution: Execution): void {
		execution.previous = this.#last;
		execution.next = undefined;
		if (this.#last === undefined) this.#first = execution;
		else this.#last.next = execution;
		this.#last = execution;
		this.#size++;
	}

	/** After the first write of a run (or the decision not to make one in `startTask`): keeps it by id here unless the registry linked it. */
	settle(execution: Execution): void {
		if (!execution.linked) this.#byId.set(execution.runId, execution);
	}

	get(runId: string): Execution | undefined {
		return this.#byId.get(runId) ?? (this.#find?.(runId, this) as Execution | undefined);
	}

	has(runId: string): boolean {
		return this.get(runId) !== undefined;
	}

	/** Removes a run that is done, for good (it is marked `forgotten`). */
	delete(execution: Execution): void {
		execution.forgotten = true;
		const { previous, next } = execution;
		if (previous === undefined) this.#first = next;
		else previous.next = next;
		if (next === undefined) this.#last = previous;
		else next.previous = previous;
		// Its own pointers stay: an iteration standing on it goes on from it to the runs still held.
		this.#size--;
		if (execution.linked) this.#release!(execution);
		else this.#byId.delete(execution.runId);
	}

	/**
	 * The runs in the order they were started. Runs may be deleted meanwhile: those are skipped. (Runs
	 * added meanwhile may be missed; no caller adds any while it iterates.)
	 */
	*values(): IterableIterator<Execution> {
		for (let execution = this.#first; execution !== undefined; execution = execution.next) {
			if (!execution.forgotten) yield execution;
		}
	}
}

/**
 * The waiting room of a manager: queued runs by priority, FIFO within a priority, kept per
 * module so that a module at its limit does not hold back runs of other modules.
 */
import type { RunPriority } from './run.js';

/** What the queue needs to know of a queued run. */
export interface Queued {
	readonly moduleId: string;
	readonly priority: RunPriority;
	/** Increases with every run started: the FIFO order within one priority. */
	readonly seq: number;
	/** Runs cancelled while queued stay in their FIFO and are dropped when they reach its head. */
	isWaiting(): boolean;
}

const priorityIndex: Readonly<Record<RunPriority, number>> = { critical: 0, high: 1, normal: 2, low: 3 };

/** An array used as a FIFO: `head` moves forward, and the array is compacted once half of it is spent. */
class Fifo<T> {
	readonly moduleId: string;
	#items: T[] = [];
	#head = 0;

	constructor(moduleId: string) {
		this.moduleId = moduleId;
	}

	get isEmpty(): boolean {
		return this.#head >= this.#items.length;
	}

	push(item: T): void {
		this.#items.push(item);
	}

	peek(): T | undefined {
		return this.#items[this.#head];
	}

	shift(): void {
		this.#items[this.#head] = undefined as T;
		this.#head++;
		if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
			this.#items = this.#items.slice(this.#head);
			this.#head = 0;
		}
	}
}

// The FIFOs of one priority with waiting runs: an array to scan (no iterator per scan), a map to find a module's.
class Level<T> {
	readonly fifos: Array<Fifo<T>> = [];
	readonly byModule = new Map<string, Fifo<T>>();

	fifoOf(moduleId: string): Fifo<T> {
		let fifo = this.byModule.get(moduleId);
		if (fifo === undefined) {
			fifo = new Fifo(moduleId);
			this.byModule.set(moduleId, fifo);
			this.fifos.push(fifo);
		}

		return fifo;
	}

	delete(fifo: Fifo<T>): void {
		this.byModule.delete(fifo.moduleId);
		this.fifos.splice(this.fifos.indexOf(fifo), 1);
	}
}

export class RunQueue<T extends Queued> {
	// One level per priority, most urgent first; a module's FIFO is deleted when it empties,
	// so a scan costs O(priorities × modules with waiting runs).
	readonly #levels: Array<Level<T>> = [new Level(), new Level(), new Level(), new Level()];

	push(item: T): void {
		this.#levels[priorityIndex[item.priority]]!.fifoOf(item.moduleId).push(item);
	}

	/**
	 * Removes and returns the next run to start: the oldest of the most urgent priority among
	 * the modules that `canStart` allows, or `undefined` when none may start.
	 */
	take(canStart: (moduleId: string) => boolean): T | undefined {
		for (const level of this.#levels) {
			const { fifos } = level;
			let best: T | undefined;
			let bestFifo: Fifo<T> | undefined;
			// Backwards: liveHead may delete the FIFO at `index`.
			for (let index = fifos.length - 1; index >= 0; index--) {
				const fifo = fifos[index] as Fifo<T>;
				const head = liveHead(level, fifo);
				if (head === undefined || !canStart(fifo.moduleId)) continue;
				if (best === undefined || head.seq < best.seq) {
					best = head;
					bestFifo = fifo;
				}
			}

			if (bestFifo !== undefined) {
				bestFifo.shift();
				if (bestFifo.isEmpty) level.delete(bestFifo);
				return best;
			}
		}

		return undefined;
	}
}

// Drops cancelled runs from the head of a FIFO and deletes the FIFO once it is empty.
function liveHead<T extends Queued>(level: Level<T>, fifo: Fifo<T>): T | undefined {
	let head = fifo.peek();
	while (head !== undefined && !head.isWaiting()) {
		fifo.shift();
		head = fifo.peek();
	}

	if (head === undefined) level.delete(fifo);
	return head;
}

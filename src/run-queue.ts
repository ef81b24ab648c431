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
	#items: T[] = [];
	#head = 0;

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

export class RunQueue<T extends Queued> {
	// One map per priority, most urgent first; a module's FIFO is deleted when it empties,
	// so a scan costs O(priorities × modules with waiting runs).
	readonly #levels: Array<Map<string, Fifo<T>>> = [new Map(), new Map(), new Map(), new Map()];

	push(item: T): void {
		const level = this.#levels[priorityIndex[item.priority]]!;
		let fifo = level.get(item.moduleId);
		if (fifo === undefined) {
			fifo = new Fifo();
			level.set(item.moduleId, fifo);
		}

		fifo.push(item);
	}

	/**
	 * Removes and returns the next run to start: the oldest of the most urgent priority among
	 * the modules that `canStart` allows, or `undefined` when none may start.
	 */
	take(canStart: (moduleId: string) => boolean): T | undefined {
		for (const level of this.#levels) {
			let best: T | undefined;
			let bestFifo: Fifo<T> | undefined;
			for (const [moduleId, fifo] of level) {
				const head = this.#liveHead(level, moduleId, fifo);
				if (head === undefined || !canStart(moduleId)) continue;
				if (best === undefined || head.seq < best.seq) {
					best = head;
					bestFifo = fifo;
				}
			}

			if (best !== undefined) {
				bestFifo!.shift();
				if (bestFifo!.isEmpty) level.delete(best.moduleId);
				return best;
			}
		}

		return undefined;
	}

	// Drops cancelled runs from the head of a FIFO and deletes the FIFO once it is empty.
	#liveHead(level: Map<string, Fifo<T>>, moduleId: string, fifo: Fifo<T>): T | undefined {
		let head = fifo.peek();
		while (head !== undefined && !head.isWaiting()) {
			fifo.shift();
			head = fifo.peek();
		}

		if (head === undefined) level.delete(moduleId);
		return head;
	}
}

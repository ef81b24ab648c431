/**
 * The floor of tracking, for judging the per-task target: the least a tracker can do and still
 * answer "what is run X doing" — an id, one record in a Map, an event per transition, its own
 * FIFO scheduler (no promise per task besides the task's own) — against p-limit(16) alone, rounds
 * alternated in one process. With `--views`, each event gets a fresh immutable copy (runledger's
 * contract) instead of the one mutable record.
 *
 *   node --expose-gc --import tsx bench/profile/floor.ts [count] [--views]
 */
import { EventEmitter } from 'eventemitter3';

import { generateRunId } from '../../src/run-id.js';
import { trivialTask } from '../workload.js';
import { alternateWithPLimit } from './alternate.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const views = args.includes('--views');

interface FloorRecord {
	readonly id: string;
	status: string;
	readonly createdAt: number;
	startedAt: number | undefined;
	completedAt: number | undefined;
	result: unknown;
	task: (() => Promise<unknown>) | undefined;
}

class FloorTracker extends EventEmitter {
	readonly records = new Map<string, FloorRecord>();
	readonly #queue: FloorRecord[] = [];
	#head = 0;
	#running = 0;
	#pending = 0;
	#idle: (() => void) | undefined;

	start(task: () => Promise<unknown>): string {
		const record: FloorRecord = { id: generateRunId(), status: 'queued', createdAt: Date.now(), startedAt: undefined, completedAt: undefined, result: undefined, task };
		this.records.set(record.id, record);
		this.#pending++;
		this.#announce('queued', record);
		this.#queue.push(record);
		if (this.#running < 16) queueMicrotask(() => this.#drain());
		return record.id;
	}

	idle(): Promise<void> {
		return this.#pending === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve));
	}

	#announce(event: string, record: FloorRecord): void {
		this.emit(event, views ? { ...record } : record);
	}

	#drain(): void {
		while (this.#running < 16 && this.#head < this.#queue.length) {
			const record = this.#queue[this.#head]!;
			this.#queue[this.#head++] = undefined as never;
			this.#running++;
			record.status = 'running';
			record.startedAt = Date.now();
			this.#announce('started', record);
			const task = record.task!;
			record.task = undefined;
			task().then(
				(result) => this.#end(record, 'completed', result),
				(error: unknown) => this.#end(record, 'failed', error),
			);
		}
	}

	#end(record: FloorRecord, status: string, outcome: unknown): void {
		this.#running--;
		record.status = status;
		record.completedAt = Date.now();
		record.result = outcome;
		this.#announce(status, record);
		this.#drain();
		if (--this.#pending === 0) this.#idle?.();
	}
}

async function timeFloor(): Promise<number> {
	const tracker = new FloorTracker();
	let events = 0;
	for (const event of ['queued', 'started', 'completed', 'failed']) tracker.on(event, () => events++);
	const start = process.hrtime.bigint();
	for (let index = 0; index < count; index++) tracker.start(trivialTask);
	await tracker.idle();
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	if (events !== count * 3) throw new Error(`floor: ${events} events for ${count} tasks`);
	return perTask;
}

await alternateWithPLimit({ count, concurrency: 16, rounds: 7, name: `floor${views ? ' (fresh views)' : ''}`, contender: timeFloor });

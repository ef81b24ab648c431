/**
 * The naive tracker of issue 5: a Map of records with `crypto.randomUUID()` ids, an event per
 * transition (queued, started, completed / failed), on p-limit(16). No indexes, no copies, no
 * validation: what a user writes in an afternoon.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

import pLimit, { type LimitFunction } from 'p-limit';

import { type Contender, trivialTask } from '../workload.js';

export interface NaiveRecord {
	readonly id: string;
	readonly moduleId: string;
	status: 'queued' | 'running' | 'completed' | 'failed';
	readonly createdAt: number;
	updatedAt: number;
	startedAt?: number;
	completedAt?: number;
	result?: unknown;
	error?: string;
}

export class NaiveTracker extends EventEmitter {
	readonly records = new Map<string, NaiveRecord>();
	readonly #limit: LimitFunction;
	#pending: Array<Promise<void>> = [];

	constructor(concurrency: number) {
		super();
		this.#limit = pLimit(concurrency);
	}

	start(moduleId: string, task: () => Promise<unknown>): string {
		const now = Date.now();
		const record: NaiveRecord = { id: randomUUID(), moduleId, status: 'queued', createdAt: now, updatedAt: now };
		this.records.set(record.id, record);
		this.emit('queued', record);
		this.#pending.push(
			this.#limit(async () => {
				record.status = 'running';
				record.startedAt = record.updatedAt = Date.now();
				this.emit('started', record);
				try {
					const result = await task();
					if (result !== undefined) record.result = result;
					record.status = 'completed';
				} catch (error) {
					record.error = String(error);
					record.status = 'failed';
				}
				record.completedAt = record.updatedAt = Date.now();
				this.emit(record.status, record);
			}),
		);
		return record.id;
	}

	async waitAll(): Promise<void> {
		const pending = this.#pending;
		this.#pending = [];
		await Promise.all(pending);
	}
}

export const LIFECYCLE_EVENTS = ['queued', 'started', 'progress', 'completed', 'failed', 'cancelled'] as const;

export function naiveTrackerContender(concurrency: number): Contender {
	return {
		key: `naive(${concurrency})`,
		label: `naive tracker (Map + randomUUID + events) on p-limit(${concurrency})`,
		prepare(count) {
			const tracker = new NaiveTracker(concurrency);
			let events = 0;
			const listener = (): void => {
				events++;
			};
			for (const event of LIFECYCLE_EVENTS) tracker.on(event, listener);
			return {
				run: async () => {
					for (let index = 0; index < count; index++) tracker.start('bench', trivialTask);
					await tracker.waitAll();
					if (events !== count * 3) throw new Error(`naive tracker: ${events} events for ${count} tasks`);
				},
			};
		},
	};
}

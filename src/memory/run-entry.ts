/**
 * One run stored by the in-memory registry: the run's fields, updated in place, and the
 * registry's bookkeeping. The index buckets and the terminal queue hold these.
 *
 * Kept small, since a registry holds thousands of finished runs: the fields most runs never
 * have share one object made on first use, and the times are stored compactly (see
 * compact-time.ts). Every field is set in the constructor, so all entries share one shape.
 */
import type { WriteSlot } from '../registry-internals.js';
import type { Run, RunErrorInfo, RunPriority, RunProgress, RunStatus } from '../run.js';
import { CREATION_ORIGIN, type CompactTime, compactTime, expandTime, isDistance } from './compact-time.js';
import { cloneValue, storeValue } from './copy-value.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// What most runs never have (or, for `ownerId` and `itemId`, only in some services).
class Extras {
	moduleName: string | undefined = undefined;
	itemId: string | undefined = undefined;
	ownerId: string | undefined = undefined;
	progress: RunProgress | undefined = undefined;
	error: RunErrorInfo | undefined = undefined;
	metadata: Readonly<Record<string, unknown>> | undefined = undefined;
}

// Status, priority and removal packed in one small integer field (`#state`).
const STATUS_CODES: readonly RunStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const PRIORITY_CODES: readonly RunPriority[] = ['critical', 'high', 'normal', 'low'];
const STATUS_CODE = { queued: 0, running: 1, completed: 2, failed: 3, cancelled: 4 } as const satisfies Record<RunStatus, number>;
const PRIORITY_CODE = { critical: 0, high: 1, normal: 2, low: 3 } as const satisfies Record<RunPriority, number>;
const STATUS_BITS = 0b111;
const PRIORITY_SHIFT = 3;
const PRIORITY_BITS = 0b11 << PRIORITY_SHIFT;
const REMOVED = 1 << 5;

export class RunEntry {
	readonly runId: string;
	readonly moduleId: string;
	readonly parameters: unknown;
	result: unknown;
	// Insertion order: breaks ties between equal `createdAt`s, so positions are unique.
	readonly seq: number;
	/** The manager's slot linked to this run while the manager holds it (see `WriteSlot`). */
	slot: WriteSlot | undefined;
	#state: number;
	// Relative to CREATION_ORIGIN.
	readonly #created: CompactTime;
	// These three relative to the creation time.
	#updated: CompactTime;
	#started: CompactTime | undefined;
	#completed: CompactTime | undefined;
	#extras: Extras | undefined;

	// `run` is valid; user values are copied here.
	constructor(run: Run, seq: number) {
		this.runId = run.runId;
		this.moduleId = run.moduleId;
		this.parameters = storeValue(run.parameters);
		this.result = storeValue(run.result);
		this.seq = seq;
		this.slot = undefined;
		this.#state = STATUS_CODE[run.status] | (PRIORITY_CODE[run.priority] << PRIORITY_SHIFT);
		const { createdAt } = run;
		this.#created = compactTime(createdAt, CREATION_ORIGIN);
		this.#updated = compactTime(run.updatedAt, createdAt);
		this.#started = run.startedAt === undefined ? undefined : compactTime(run.startedAt, createdAt);
		this.#completed = run.completedAt === undefined ? undefined : compactTime(run.completedAt, createdAt);
		this.#extras = undefined;
		if (run.moduleName !== undefined) this.#more().moduleName = run.moduleName;
		if (run.itemId !== undefined) this.#more().itemId = run.itemId;
		this.ownerId = run.ownerId;
		this.progress = storeValue(run.progress);
		this.error = storeValue(run.error);
		this.metadata = storeValue(run.metadata);
	}

	/**
	 * Orders entries by creation time, then `seq`: as comparing `createdAt` would, without
	 * expanding the compact times when both are distances from the same origin (every index insert
	 * compares two entries).
	 */
	static compareCreation(a: RunEntry, b: RunEntry): number {
		const x = a.#created;
		const y = b.#created;
		const order = isDistance(x) && isDistance(y) ? x - y : a.createdAt - b.createdAt;
		return order || a.seq - b.seq;
	}

	/** Orders terminal entries by when they ended ({@link endedAt}), then `seq`. */
	static compareEnd(a: RunEntry, b: RunEntry): number {
		const x = a.#completed ?? a.#updated;
		const y = b.#completed ?? b.#updated;
		// Distances from each entry's own creation time: sums of small integers are exact.
		const order = isDistance(x) && isDistance(y) && isDistance(a.#created) && isDistance(b.#created) ? a.#created + x - (b.#created + y) : a.endedAt - b.endedAt;
		return order || a.seq - b.seq;
	}

	/** When a terminal run ended: `completedAt`, else `updatedAt`. Fixed from then on, as terminal runs never change. */
	get endedAt(): number {
		return this.completedAt ?? this.updatedAt;
	}

	get status(): RunStatus {
		return STATUS_CODES[this.#state & STATUS_BITS] as RunStatus;
	}

	set status(status: RunStatus) {
		this.#state = (this.#state & ~STATUS_BITS) | STATUS_CODE[status];
	}

	get priority(): RunPriority {
		return PRIORITY_CODES[(this.#state & PRIORITY_BITS) >> PRIORITY_SHIFT] as RunPriority;
	}

	set priority(priority: RunPriority) {
		this.#state = (this.#state & ~PRIORITY_BITS) | (PRIORITY_CODE[priority] << PRIORITY_SHIFT);
	}

	/** Set once the run is removed, which makes the entry dead in every index still holding it. */
	get removed(): boolean {
		return (this.#state & REMOVED) !== 0;
	}

	/** Marks the entry removed, for good. */
	remove(): void {
		this.#state |= REMOVED;
	}

	get createdAt(): number {
		return expandTime(this.#created, CREATION_ORIGIN);
	}

	get updatedAt(): number {
		return expandTime(this.#updated, this.createdAt);
	}

	get startedAt(): number | undefined {
		return this.#started === undefined ? undefined : expandTime(this.#started, this.createdAt);
	}

	get completedAt(): number | undefined {
		return this.#completed === undefined ? undefined : expandTime(this.#completed, this.createdAt);
	}

	/**
	 * Sets `startedAt` and `completedAt` where given, and moves `updatedAt` to `now` unless it is
	 * later already (it never moves back). One call rather than four accessors: numbers that are
	 * not small integers cross a call boxed, and a patch's times are all of that kind.
	 */
	stamp(startedAt: number | undefined, completedAt: number | undefined, now: number): void {
		const createdAt = this.createdAt;
		if (startedAt !== undefined) this.#started = compactTime(startedAt, createdAt);
		if (completedAt !== undefined) this.#completed = compactTime(completedAt, createdAt);
		if (now > expandTime(this.#updated, createdAt)) this.#updated = compactTime(now, createdAt);
	}

	get moduleName(): string | undefined {
		return this.#extras?.moduleName;
	}

	get itemId(): string | undefined {
		return this.#extras?.itemId;
	}

	get ownerId(): string | undefined {
		return this.#extras?.ownerId;
	}

	set ownerId(ownerId: string | undefined) {
		if (ownerId !== undefined || this.#extras !== undefined) this.#more().ownerId = ownerId;
	}

	get progress(): RunProgress | undefined {
		return this.#extras?.progress;
	}

	/** Takes a stored copy (see `storeValue`). */
	set progress(progress: RunProgress | undefined) {
		if (progress !== undefined || this.#extras !== undefined) this.#more().progress = progress;
	}

	get error(): RunErrorInfo | undefined {
		return this.#extras?.error;
	}

	/** Takes a stored copy. */
	set error(error: RunErrorInfo | undefined) {
		if (error !== undefined || this.#extras !== undefined) this.#more().error = error;
	}

	get metadata(): Readonly<Record<string, unknown>> | undefined {
		return this.#extras?.metadata;
	}

	/** Takes a stored copy. */
	set metadata(metadata: Readonly<Record<string, unknown>> | undefined) {
		if (metadata !== undefined || this.#extras !== undefined) this.#more().metadata = metadata;
	}

	/** The run as callers see it: the fields that are set, user values copied. */
	toRun(): Run {
		const run: Mutable<Run> = {
			runId: this.runId,
			moduleId: this.moduleId,
			status: this.status,
			priority: this.priority,
			parameters: cloneValue(this.parameters),
			createdAt: this.createdAt,
			updatedAt: this.updatedAt,
		};
		const extras = this.#extras;
		if (extras !== undefined) {
			if (extras.moduleName !== undefined) run.moduleName = extras.moduleName;
			if (extras.itemId !== undefined) run.itemId = extras.itemId;
			if (extras.ownerId !== undefined) run.ownerId = extras.ownerId;
			if (extras.progress !== undefined) run.progress = cloneValue(extras.progress);
		}
		if (this.result !== undefined) run.result = cloneValue(this.result);
		if (extras?.error !== undefined) run.error = cloneValue(extras.error);
		const { startedAt, completedAt } = this;
		if (startedAt !== undefined) run.startedAt = startedAt;
		if (completedAt !== undefined) run.completedAt = completedAt;
		if (extras?.metadata !== undefined) run.metadata = cloneValue(extras.metadata);
		return run;
	}

	#more(): Extras {
		return (this.#extras ??= new Extras());
	}
}

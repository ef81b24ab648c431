/**
 * Small statistics for the benchmark: medians, ranges, percentiles, and ratios taken per round.
 * Only ratios measured within one round (same process, same minute, same noise) are compared.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** The median of `values` (the mean of the two middle ones for an even count). NaN when empty. */
export function median(values: readonly number[]): number {
	return quantile(values, 0.5);
}

/** The `q`-quantile (0..1) of `values`, linearly interpolated. NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
	if (values.length === 0) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const position = (sorted.length - 1) * q;
	const low = Math.floor(position);
	const high = Math.ceil(position);
	const lowValue = sorted[low] as number;
	return lowValue + ((sorted[high] as number) - lowValue) * (position - low);
}

export interface Summary {
	readonly median: number;
	readonly min: number;
	readonly max: number;
	readonly count: number;
}

export function summarize(values: readonly number[]): Summary {
	return { median: median(values), min: Math.min(...values), max: Math.max(...values), count: values.length };
}

/**
 * Ratios taken per round: for each round where both were measured, `numerator[i] / denominator[i]`,
 * summarized (the median of the per-round ratios, and their range).
 */
export function ratioPerRound(numerator: readonly number[], denominator: readonly number[]): Summary {
	const ratios: number[] = [];
	for (let index = 0; index < Math.min(numerator.length, denominator.length); index++) {
		ratios.push((numerator[index] as number) / (denominator[index] as number));
	}
	return summarize(ratios);
}

/** The order of `items` for round `round`: rotated by one each round, so each goes first in turn. */
export function rotate<T>(items: readonly T[], round: number): T[] {
	const shift = round % items.length;
	return [...items.slice(shift), ...items.slice(0, shift)];
}

/** A number with `digits` significant-looking decimals, for tables. */
export function fmt(value: number, digits = 2): string {
	if (!Number.isFinite(value)) return String(value);
	const abs = Math.abs(value);
	if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
	if (abs >= 100) return value.toFixed(Math.max(0, digits - 2));
	if (abs >= 10) return value.toFixed(Math.max(0, digits - 1));
	return value.toFixed(digits);
}

/** `median (min–max)`. */
export function fmtSummary(summary: Summary, digits = 2, unit = ''): string {
	return `${fmt(summary.median, digits)}${unit} (${fmt(summary.min, digits)}–${fmt(summary.max, digits)})`;
}

/** `1.23× (1.10–1.31)`. */
export function fmtRatio(summary: Summary): string {
	return `${summary.median.toFixed(2)}× (${summary.min.toFixed(2)}–${summary.max.toFixed(2)})`;
}

/** A Markdown table. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
	const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
	return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Nanoseconds since an arbitrary origin, as a number (fine for durations under ~100 days). */
export function now(): number {
	return Number(process.hrtime.bigint());
}

/** Runs every pending full garbage collection (needs --expose-gc), letting finalizers and microtasks run in between. */
export async function fullGc(): Promise<void> {
	const gc = globalThis.gc;
	if (gc === undefined) throw new Error('Run with --expose-gc (npm run bench does).');
	for (let pass = 0; pass < 3; pass++) {
		gc();
		await new Promise((resolve) => setImmediate(resolve));
	}
}

/** heapUsed after a full GC. */
export async function settledHeap(): Promise<number> {
	await fullGc();
	return process.memoryUsage().heapUsed;
}

/**
 * The garbage-collection pauses that begin inside a window (`PerformanceObserver` `gc` entries),
 * for splitting a timed run into collection and the rest. Entries arrive a turn or two late, so
 * both ends of the window wait for them.
 */
export class GcPauses {
	// Pauses as [start, duration] in ms on performance.now()'s clock.
	readonly #pauses: Array<readonly [number, number]> = [];
	readonly #observer = new PerformanceObserver((list) => {
		for (const entry of list.getEntries()) this.#pauses.push([entry.startTime, entry.duration]);
	});
	#from = 0;
	#to = 0;

	constructor() {
		this.#observer.observe({ entryTypes: ['gc'] });
	}

	/** Opens the window, once the pauses before it have been delivered and dropped. */
	async begin(): Promise<void> {
		await nextTurn();
		this.#pauses.length = 0;
		this.#from = performance.now();
	}

	/** Closes the window. */
	end(): void {
		this.#to = performance.now();
	}

	/** Milliseconds of pause within the window, once the pauses in it have been delivered. */
	async totalMs(): Promise<number> {
		await nextTurn();
		await nextTurn();
		let total = 0;
		for (const [at, duration] of this.#pauses) if (at >= this.#from && at < this.#to) total += Math.min(duration, this.#to - at);
		return total;
	}

	disconnect(): void {
		this.#observer.disconnect();
	}
}

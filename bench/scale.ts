/**
 * Section 3: how cost grows with the number of runs kept in a MemoryRunRegistry (maxRuns:
 * Infinity): per-task time and heap per run at each size, and listing among the largest.
 */
import type { MemoryRunRegistry, RunQuery } from '../src/index.js';
import { createMemoryManager, runMemory, runledgerMemoryContender } from './contenders/runledger-memory.js';
import { type Summary, now, quantile, settledHeap, summarize } from './stats.js';
import { warmUp } from './throughput.js';

export interface ScaleRow {
	readonly count: number;
	readonly rounds: number;
	readonly perTaskUs: Summary;
	readonly bytesPerRun: Summary;
}

export interface ListingRow {
	readonly label: string;
	readonly query: string;
	readonly calls: number;
	readonly p50Us: number;
	readonly p99Us: number;
	readonly maxUs: number;
}

export interface ScaleResult {
	readonly rows: ScaleRow[];
	readonly listingAmong: number;
	readonly listing: ListingRow[];
}

export async function measureScale(sizes: ReadonlyArray<{ count: number; rounds: number }>, listingCalls: number, log: (line: string) => void): Promise<ScaleResult> {
	const rows: ScaleRow[] = [];
	let listing: ListingRow[] = [];
	let listingAmong = 0;
	for (const [sizeIndex, { count, rounds }] of sizes.entries()) {
		const perTask: number[] = [];
		const perRun: number[] = [];
		for (let round = 0; round < rounds; round++) {
			// The largest registry is kept for the listing measure.
			const listingCallsHere = sizeIndex === sizes.length - 1 && round === rounds - 1 ? listingCalls : 0;
			const once = await measureOnce(count, listingCallsHere);
			perTask.push(once.perTaskUs);
			perRun.push(once.bytesPerRun);
			log(`  ${count.toLocaleString('en-US')} runs, round ${round + 1}/${rounds}: ${once.perTaskUs.toFixed(2)} µs/task, ${once.bytesPerRun.toFixed(0)} bytes/run`);
			if (once.listing !== undefined) {
				listingAmong = count;
				listing = once.listing;
				for (const row of listing) log(`  listing ${row.query} among ${count.toLocaleString('en-US')}: p50 ${row.p50Us.toFixed(1)} µs, p99 ${row.p99Us.toFixed(1)} µs`);
			}
		}
		rows.push({ count, rounds, perTaskUs: summarize(perTask), bytesPerRun: summarize(perRun) });
	}
	return { rows, listingAmong, listing };
}

// One timed run into a fresh registry. A function of its own, so that nothing of this run (its
// registry above all) is still referenced by a suspended frame when the next run measures its "before".
async function measureOnce(count: number, listingCalls: number): Promise<{ perTaskUs: number; bytesPerRun: number; listing: ListingRow[] | undefined }> {
	const before = await settledHeap();
	const { manager, registry } = createMemoryManager(16, Number.POSITIVE_INFINITY);
	// After the collections of settledHeap, as the throughput section does (see WARM_UP_TASKS).
	await warmUp(runledgerMemoryContender({ concurrency: 16 }));
	const start = now();
	await runMemory(manager, count);
	const elapsed = now() - start;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	const after = await settledHeap();
	if (registry.size !== count) throw new Error(`scale: ${registry.size} runs stored for ${count}`);
	const listing = listingCalls > 0 ? await measureListing(registry, listingCalls) : undefined;
	return { perTaskUs: elapsed / count / 1000, bytesPerRun: (after - before) / count, listing };
}

async function measureListing(registry: MemoryRunRegistry, calls: number): Promise<ListingRow[]> {
	// A page deep in the 'completed' bucket, to show that a cursor is a position, not an offset.
	let cursor: string | undefined;
	for (let page = 0; page < 100; page++) cursor = (await registry.listRuns({ status: 'completed', limit: 100, ...(cursor === undefined ? {} : { cursor }) })).nextCursor;
	const queries: Array<{ label: string; query: RunQuery; text: string }> = [
		{ label: 'newest 100 completed (the target)', query: { status: 'completed', limit: 100 }, text: "`{ status: 'completed', limit: 100 }`" },
		{ label: '100 completed or failed (two buckets merged)', query: { status: ['completed', 'failed'], limit: 100 }, text: "`{ status: ['completed', 'failed'], limit: 100 }`" },
		{ label: 'page 101 of completed (cursor)', query: { status: 'completed', limit: 100, ...(cursor === undefined ? {} : { cursor }) }, text: "`{ status: 'completed', limit: 100, cursor }` (page 101)" },
	];
	const rows: ListingRow[] = [];
	for (const { label, query, text } of queries) {
		for (let warm = 0; warm < 100; warm++) await registry.listRuns(query);
		const samples: number[] = [];
		for (let call = 0; call < calls; call++) {
			const start = now();
			const page = await registry.listRuns(query);
			samples.push((now() - start) / 1000);
			if (page.runs.length !== 100) throw new Error(`listing returned ${page.runs.length} runs`);
		}
		rows.push({ label, query: text, calls, p50Us: quantile(samples, 0.5), p99Us: quantile(samples, 0.99), maxUs: Math.max(...samples) });
	}
	return rows;
}

/**
 * What a finished run keeps on the heap, by kind of object: heap snapshots before and after
 * `count` empty runs (no parameters, no result) into a kept MemoryRunRegistry, diffed by
 * (node type, constructor/name), per run. `--naive` measures the naive tracker instead.
 *
 *   node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/profile/heap-by-type.ts [count] [--naive]
 */
import { readFileSync, rmSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';

import { NaiveTracker } from '../contenders/naive-tracker.js';
import { createMemoryManager, runMemory } from '../contenders/runledger-memory.js';
import { fullGc } from '../stats.js';
import { emptyTask } from '../workload.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 20_000);
const naive = args.includes('--naive');

type Totals = Map<string, { count: number; size: number }>;

function summarize(file: string): Totals {
	const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
		snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
		nodes: number[];
		strings: string[];
	};
	rmSync(file);
	const fields = snapshot.snapshot.meta.node_fields;
	const types = snapshot.snapshot.meta.node_types[0];
	const width = fields.length;
	const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
	const totals: Totals = new Map();
	for (let index = 0; index < snapshot.nodes.length; index += width) {
		const type = types[snapshot.nodes[index + typeAt]!]!;
		// Strings are grouped by type only; objects by constructor name.
		const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : snapshot.strings[snapshot.nodes[index + nameAt]!]!;
		const key = `${type}${name === '' ? '' : ` ${name.slice(0, 60)}`}`;
		const entry = totals.get(key) ?? { count: 0, size: 0 };
		entry.count++;
		entry.size += snapshot.nodes[index + sizeAt]!;
		totals.set(key, entry);
	}
	return totals;
}

async function snap(): Promise<Totals> {
	await fullGc();
	return summarize(writeHeapSnapshot());
}

const before = await snap();
let kept: unknown;
if (naive) {
	const tracker = new NaiveTracker(16);
	for (let index = 0; index < count; index++) tracker.start('bench', emptyTask);
	await tracker.waitAll();
	kept = tracker.records;
} else {
	const { manager, registry } = createMemoryManager(16, Number.POSITIVE_INFINITY);
	await runMemory(manager, count, emptyTask);
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	kept = registry;
}
const after = await snap();
const rows = [...after]
	.map(([key, { count: n, size }]) => ({ key, count: (n - (before.get(key)?.count ?? 0)) / count, size: (size - (before.get(key)?.size ?? 0)) / count }))
	.filter((row) => Math.abs(row.size) >= 1)
	.sort((a, b) => b.size - a.size);
let total = 0;
console.log(`${naive ? 'naive tracker' : 'runledger MemoryRunRegistry'}: ${count} runs kept (${kept === undefined ? '' : 'store alive'})`);
console.log('bytes/run  objects/run  kind');
for (const row of rows.slice(0, 25)) {
	total += row.size;
	console.log(`${row.size.toFixed(1).padStart(9)}  ${row.count.toFixed(2).padStart(11)}  ${row.key}`);
}
console.log(`${total.toFixed(1).padStart(9)}  (sum of the rows above; self sizes as the snapshot counts them)`);

/**
 * Summarizes a V8 sampling heap profile (`node --heap-prof`): bytes allocated by function (self),
 * as percentages of all sampled allocation.
 *
 *   node --heap-prof --heap-prof-dir=.tmp/prof --import tsx --import ./scripts/lua-hooks.mjs bench/profile/memory-tasks.ts
 *   node --import tsx bench/profile/top-allocations.ts .tmp/prof/<main thread file>.heapprofile
 */
import { readFileSync } from 'node:fs';

interface HeapNode {
	readonly callFrame: { readonly functionName: string; readonly url: string };
	readonly selfSize: number;
	readonly children: HeapNode[];
}

const file = process.argv.slice(2).find((arg) => arg.endsWith('.heapprofile'));
if (file === undefined) throw new Error('usage: top-allocations.ts <file.heapprofile> [count]');
const limit = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 25);
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
const bySelf = new Map<string, number>();
let total = 0;
const walk = (node: HeapNode): void => {
	const { functionName, url } = node.callFrame;
	const name = `${functionName || '(anonymous)'}${url === '' ? '' : ` ${url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}`}`;
	bySelf.set(name, (bySelf.get(name) ?? 0) + node.selfSize);
	total += node.selfSize;
	for (const child of node.children) walk(child);
};
walk(head);
console.log(`Allocated (sampled), by function: ${(total / 2 ** 20).toFixed(1)} MiB in all`);
for (const [name, bytes] of [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
	console.log(`${((bytes / total) * 100).toFixed(1).padStart(5)}%  ${(bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${name}`);
}

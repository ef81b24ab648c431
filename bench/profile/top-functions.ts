/**
 * Summarizes a V8 .cpuprofile: the functions with the most self time, and with the most total
 * (inclusive) time, as percentages of all samples.
 *
 *   node --import tsx bench/profile/top-functions.ts <file.cpuprofile> [count]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
	readonly id: number;
	readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
	readonly hitCount?: number;
	readonly children?: number[];
}

// Node writes one profile per thread (the lua hooks run on one of their own): pass the main thread's, `….0.001.cpuprofile`.
const file = process.argv.slice(2).find((arg) => arg.endsWith('.cpuprofile'));
if (file === undefined) throw new Error('usage: top-functions.ts <file.cpuprofile> [count]');
const limit = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const hits = new Map<number, number>();
for (const sample of profile.samples) hits.set(sample, (hits.get(sample) ?? 0) + 1);
const totalSamples = profile.samples.length;

const nameOf = (node: ProfileNode): string => {
	const { functionName, url, lineNumber } = node.callFrame;
	const where = url === '' ? '' : ` ${url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}:${lineNumber + 1}`;
	return `${functionName || '(anonymous)'}${where}`;
};

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
// Walks from the root, counting each function once per stack for its inclusive time.
const walk = (id: number, onStack: Set<string>): number => {
	const node = byId.get(id)!;
	const name = nameOf(node);
	const own = hits.get(id) ?? 0;
	self.set(name, (self.get(name) ?? 0) + own);
	const first = !onStack.has(name);
	if (first) onStack.add(name);
	let sum = own;
	for (const child of node.children ?? []) sum += walk(child, onStack);
	if (first) {
		onStack.delete(name);
		inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
	}
	return sum;
};
walk(profile.nodes[0]!.id, new Set());

const print = (title: string, map: Map<string, number>): void => {
	console.log(`\n${title} (${totalSamples} samples)`);
	for (const [name, count] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
		console.log(`${((count / totalSamples) * 100).toFixed(1).padStart(5)}%  ${name}`);
	}
};
print('Self time', self);
print('Total time', inclusive);

/**
 * A/B of a library change: two bundles of `src/` (say, the last commit's and the working tree's)
 * run the memory contender in alternated rounds in one process; the ratio B/A is taken per round.
 * Same-process pairs are the only comparison this noisy machine allows, and the time taken is the
 * process's CPU time (all threads, the garbage collector's included), which leaves out the time
 * this VM's neighbours steal (`--wall` for the elapsed time instead).
 *
 *   npx esbuild src/index.ts --bundle --platform=node --format=esm --loader:.lua=text --external:ioredis --outfile=.tmp/ab/a.mjs
 *   (change src/) and the same with --outfile=.tmp/ab/b.mjs, then
 *   node --expose-gc --import tsx bench/profile/ab.ts [--unlimited | --concurrency=N] [--burst=N] [--rounds=N] [--wall]
 * `--burst=N`: bursts of N tasks (default 100,000), as many as make 100,000 tasks per round, each
 * on a fresh manager; small bursts get 20 warm-up rounds, since V8 needs them to optimise.
 * (bench/profile/ab.sh does all of it, both ways round.)
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type * as Runledger from '../../src/index.js';
import { LIFECYCLE_EVENTS } from '../contenders/naive-tracker.js';
import { median } from '../stats.js';
import { trivialTask } from '../workload.js';

const args = process.argv.slice(2);
const concurrency = args.includes('--unlimited') ? Number.POSITIVE_INFINITY : Number(args.find((arg) => arg.startsWith('--concurrency='))?.slice(14) ?? 16);
const wall = args.includes('--wall');
const rounds = Number(args.find((arg) => arg.startsWith('--rounds='))?.slice(9) ?? 12);
const burst = Number(args.find((arg) => arg.startsWith('--burst='))?.slice(8) ?? 100_000);
const bursts = Math.max(1, Math.round(100_000 / burst));
const count = burst * bursts;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const load = async (name: string): Promise<typeof Runledger> => (await import(pathToFileURL(resolve('.tmp/ab', `${name}.mjs`)).href)) as typeof Runledger;
const [a, b] = [await load('a'), await load('b')];

async function time(library: typeof Runledger): Promise<number> {
	gc();
	const start = process.cpuUsage();
	let elapsed = 0;
	for (let index = 0; index < bursts; index++) {
		const registry = new library.MemoryRunRegistry({ maxRuns: 200_000 });
		const manager = new library.BackgroundTaskManager(registry, concurrency === Number.POSITIVE_INFINITY ? {} : { concurrency });
		for (const event of LIFECYCLE_EVENTS) manager.on(event, () => {});
		const began = process.hrtime.bigint();
		for (let task = 0; task < burst; task++) manager.startTask({ moduleId: 'bench' }, trivialTask);
		await manager.waitAll();
		elapsed += Number(process.hrtime.bigint() - began) / 1e3;
		await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	}
	const { user, system } = process.cpuUsage(start);
	return (wall ? elapsed : user + system) / count;
}

for (let warm = 0; warm < (bursts > 1 ? 20 : 1); warm++) {
	await time(a);
	await time(b);
}
const ratios: number[] = [];
for (let round = 0; round < rounds; round++) {
	// Alternate which goes first, so that neither always runs on the other's garbage.
	const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
	const x = await time(first);
	const y = await time(second);
	const [ta, tb] = first === a ? [x, y] : [y, x];
	ratios.push(tb / ta);
	console.log(`round ${round + 1}: a ${ta.toFixed(2)} µs, b ${tb.toFixed(2)} µs, b/a ${(tb / ta).toFixed(3)}`);
}
console.log(`median b/a ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`);

/**
 * The memory contender against p-limit(16) at several burst sizes, each time split at the garbage
 * collector's pauses: how much of the 100,000-task ratio of `npm run bench` comes from p-limit's
 * collection work, and what the ratio is when a burst is small enough that little is collected.
 *
 * Every size is warmed up first (small bursts take many runs before V8 has optimised runledger's
 * code, which is much larger than p-limit's), then timed in pairs alternated in one process; the
 * figures are medians over the rounds of µs per task, and of the per-round ratios.
 *
 *   node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/profile/burst-sizes.ts [--rounds=N]
 */
import { GcPauses, median } from '../stats.js';
import { timePLimit, timeRunledger } from './alternate.js';

const args = process.argv.slice(2);
const rounds = Number(args.find((arg) => arg.startsWith('--rounds='))?.slice(9) ?? 9);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const pauses = new GcPauses();

// Runs `measure` `repeat` times back to back; µs per task over all of them, and of that in GC pauses.
async function timed(measure: () => Promise<number>, repeat: number, count: number): Promise<{ total: number; gc: number }> {
	gc();
	await pauses.begin();
	let total = 0;
	for (let index = 0; index < repeat; index++) total += await measure();
	pauses.end();
	return { total: total / repeat, gc: ((await pauses.totalMs()) * 1000) / (count * repeat) };
}

console.log(`burst size | p-limit(16) µs/task (GC) | runledger µs/task (GC) | ratio | ratio outside GC pauses   (medians of ${rounds} rounds)`);
for (const count of [100, 1_000, 10_000, 100_000]) {
	// About 200,000 tasks per timed sample whatever the burst size, so that small bursts are not all noise.
	const repeat = Math.max(1, Math.round(200_000 / count));
	for (let warm = 0; warm < Math.max(3, 2_000_000 / count / repeat); warm++) {
		await timePLimit(count, 16);
		await timeRunledger(count, 16);
	}
	const rows: Array<{ a: { total: number; gc: number }; b: { total: number; gc: number } }> = [];
	for (let round = 0; round < rounds; round++) {
		// The order swapped every round: whichever runs second inherits the first one's garbage.
		const limit = (): Promise<{ total: number; gc: number }> => timed(() => timePLimit(count, 16), repeat, count);
		const runledger = (): Promise<{ total: number; gc: number }> => timed(() => timeRunledger(count, 16), repeat, count);
		if (round % 2 === 0) {
			const a = await limit();
			rows.push({ a, b: await runledger() });
		} else {
			const b = await runledger();
			rows.push({ a: await limit(), b });
		}
	}
	const m = (pick: (row: (typeof rows)[number]) => number): string => median(rows.map(pick)).toFixed(2);
	console.log(
		`${count.toLocaleString('en-US').padStart(10)} | ${m((row) => row.a.total)} (${m((row) => row.a.gc)}) | ${m((row) => row.b.total)} (${m((row) => row.b.gc)}) | ${m((row) => row.b.total / row.a.total)}× | ${m((row) => (row.b.total - row.b.gc) / (row.a.total - row.a.gc))}×`,
	);
}
pauses.disconnect();

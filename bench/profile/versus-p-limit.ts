/**
 * A quick side-by-side for library work: p-limit(16) and the runledger memory contender, rounds
 * alternated, ratio per round. `npm run bench` is the reference; this is the five-second loop.
 *
 *   node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/profile/versus-p-limit.ts [count] [--unlimited]
 */
import { createMemoryManager, runMemory } from '../contenders/runledger-memory.js';
import { alternateWithPLimit } from './alternate.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const concurrency = args.includes('--unlimited') ? Number.POSITIVE_INFINITY : 16;

async function timeRunledger(): Promise<number> {
	const { manager } = createMemoryManager(concurrency, Math.max(200_000, count * 2));
	const start = process.hrtime.bigint();
	await runMemory(manager, count);
	const perTask = Number(process.hrtime.bigint() - start) / 1e3 / count;
	await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
	return perTask;
}

await alternateWithPLimit({ count, concurrency, rounds: 5, name: 'runledger', contender: timeRunledger });

/**
 * A quick side-by-side for library work: p-limit(16) and the runledger memory contender, rounds
 * alternated, ratio per round. `npm run bench` is the reference; this is the five-second loop.
 *
 *   node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/profile/versus-p-limit.ts [count] [--unlimited]
 */
import { alternateWithPLimit, timeRunledger } from './alternate.js';

const args = process.argv.slice(2);
const count = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const concurrency = args.includes('--unlimited') ? Number.POSITIVE_INFINITY : 16;

await alternateWithPLimit({ count, concurrency, rounds: 5, name: 'runledger', contender: () => timeRunledger(count, concurrency) });

/**
 * `npm run bench`: runledger against the libraries users would pick instead (issue 5).
 *
 *   npm run bench                 full run; writes docs/benchmarks.md
 *   npm run bench -- --quick      small sizes, for iterating; prints only
 *   npm run bench -- --only=throughput,heap,scale,redis,cancel   some sections; prints only
 *   npm run bench -- --no-write   full run, prints only
 *
 * Everything runs in this one process (the cancel measure forks one child), each section's
 * contenders in an order rotated every round; ratios are taken within each round, and the
 * tables give the median and the range over the rounds. Not a test: nothing here asserts a time.
 */
import { loadavg } from 'node:os';

import { bare } from './contenders/bare.js';
import { bullmqContender } from './contenders/bullmq.js';
import { naiveRedisContender } from './contenders/naive-redis.js';
import { naiveTrackerContender } from './contenders/naive-tracker.js';
import { pLimitContender } from './contenders/p-limit.js';
import { pQueueContender } from './contenders/p-queue.js';
import { runledgerMemoryContender } from './contenders/runledger-memory.js';
import { runledgerRedisContender } from './contenders/runledger-redis.js';
import { type CancelResult, measureCancel } from './cancel.js';
import { type HeapResult, measureHeap } from './heap.js';
import { describeMachine } from './machine.js';
import { type RedisResult, measureRedis } from './redis.js';
import { startRedisServer } from './redis-server.js';
import { type Report, renderConsole, renderMarkdown, writeReport } from './report.js';
import { type ScaleResult, measureScale } from './scale.js';
import { type ThroughputResult, measureThroughput } from './throughput.js';

const SECTIONS = ['throughput', 'heap', 'scale', 'redis', 'cancel'] as const;
type Section = (typeof SECTIONS)[number];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((arg) => arg.startsWith('--only='));
const only = onlyArg === undefined ? undefined : new Set(onlyArg.slice('--only='.length).split(',').filter(Boolean));
for (const name of only ?? []) if (!SECTIONS.includes(name as Section)) throw new Error(`Unknown section "${name}": one of ${SECTIONS.join(', ')}`);
const enabled = (section: Section): boolean => only === undefined || only.has(section);
const write = !quick && only === undefined && !args.includes('--no-write');

const sizes = quick
	? { throughput: 10_000, throughputRounds: 5, heap: 20_000, heapRounds: 2, scale: [{ count: 1_000, rounds: 3 }, { count: 10_000, rounds: 2 }, { count: 100_000, rounds: 1 }], listingCalls: 200, redis: 1_000, redisRounds: 5, cancel: 100 }
	: { throughput: 100_000, throughputRounds: 11, heap: 100_000, heapRounds: 3, scale: [{ count: 10_000, rounds: 5 }, { count: 100_000, rounds: 3 }, { count: 1_000_000, rounds: 1 }], listingCalls: 1_000, redis: 10_000, redisRounds: 5, cancel: 1_000 };

const log = (line: string): void => console.log(line);
const began = Date.now();
const command = `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
const machine = describeMachine();
log(`runledger bench${quick ? ' (quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${machine.loadAverage}`);

let throughput: ThroughputResult | undefined;
let heap: HeapResult | undefined;
let scale: ScaleResult | undefined;
let redis: RedisResult | undefined;
let cancel: CancelResult | undefined;

if (enabled('throughput')) {
	log(`\n1. ${sizes.throughput.toLocaleString('en-US')} trivial tasks, ${sizes.throughputRounds} rounds`);
	throughput = await measureThroughput(
		[
			bare,
			pLimitContender(16),
			pQueueContender(16),
			naiveTrackerContender(16),
			runledgerMemoryContender({ concurrency: 16 }),
			pLimitContender(Number.POSITIVE_INFINITY),
			runledgerMemoryContender({ concurrency: Number.POSITIVE_INFINITY }),
			runledgerMemoryContender({
				concurrency: 16,
				maxRuns: 10_000,
				key: 'runledger(16, maxRuns 10k)',
				label: 'runledger, MemoryRunRegistry default `maxRuns` (10,000), concurrency 16, listener on every event — a burst is all active at first and active runs are never evicted, so it still ends up holding all of them',
			}),
		],
		sizes.throughput,
		sizes.throughputRounds,
		log,
	);
}

if (enabled('heap')) {
	log(`\n2. Retained heap per finished run, ${sizes.heap.toLocaleString('en-US')} runs, ${sizes.heapRounds} rounds`);
	heap = await measureHeap(sizes.heap, sizes.heapRounds, log);
}

if (enabled('scale')) {
	log('\n3. Scale: runs kept in a MemoryRunRegistry (maxRuns: Infinity)');
	scale = await measureScale(sizes.scale, sizes.listingCalls, log);
}

if (enabled('redis') || enabled('cancel')) {
	const server = await startRedisServer();
	log(`\nredis-server ${server.version} on 127.0.0.1:${server.port} (--save '' --appendonly no)`);
	try {
		if (enabled('redis')) {
			log(`\n4. Redis: ${sizes.redis.toLocaleString('en-US')} jobs, concurrency 16, ${sizes.redisRounds} rounds`);
			redis = await measureRedis(server.port, [bullmqContender, naiveRedisContender, runledgerRedisContender(), runledgerRedisContender({ instanceId: 'bench-instance' })], sizes.redis, sizes.redisRounds, log);
		}
		if (enabled('cancel')) {
			log(`\n5. Cross-process cancel latency, ${sizes.cancel} samples`);
			cancel = await measureCancel(server.port, sizes.cancel, log);
		}
	} finally {
		await server.stop();
	}
}

const report: Report = { machine, command, quick, durationMs: Date.now() - began, date: new Date(), loadAtEnd: loadavg().map((load) => load.toFixed(2)).join(' / '), sizes, throughput, heap, scale, redis, cancel };
log(`\n${renderConsole(report)}`);
if (write) {
	const path = await writeReport(renderMarkdown(report));
	log(`\nWrote ${path} (${((Date.now() - began) / 1000).toFixed(0)} s in all).`);
} else {
	log(`\n(${((Date.now() - began) / 1000).toFixed(0)} s; docs/benchmarks.md not written: ${quick ? '--quick' : only !== undefined ? '--only' : '--no-write'})`);
}
// ioredis sockets and the like are all closed by now; exit anyway so that nothing left open holds the run.
process.exit(0);

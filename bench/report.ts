/** Renders the results: a compact console summary, and docs/benchmarks.md (keeping its hand-written findings). */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import type { CancelResult } from './cancel.js';
import type { HeapResult } from './heap.js';
import type { Machine } from './machine.js';
import type { RedisResult } from './redis.js';
import type { ScaleResult } from './scale.js';
import { type Summary, fmt, fmtRatio, fmtSummary, median, ratioPerRound, table } from './stats.js';
import { type ThroughputResult, WARM_UP_TASKS } from './throughput.js';

export interface Report {
	readonly machine: Machine;
	readonly command: string;
	readonly quick: boolean;
	readonly durationMs: number;
	readonly date: Date;
	/** 1 / 5 / 15 min load average when the run ended. */
	readonly loadAtEnd: string;
	readonly sizes: Readonly<Record<string, unknown>>;
	readonly throughput: ThroughputResult | undefined;
	readonly heap: HeapResult | undefined;
	readonly scale: ScaleResult | undefined;
	readonly redis: RedisResult | undefined;
	readonly cancel: CancelResult | undefined;
}

interface Target {
	readonly target: string;
	readonly goal: string;
	readonly measured: string;
	readonly met: boolean;
}

const FINDINGS_BEGIN = '<!-- findings:begin (hand-written; npm run bench keeps this section) -->';
const FINDINGS_END = '<!-- findings:end -->';
const DOCS_PATH = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
/** Per-task time and heap per run "stay flat" when the largest size costs at most this much more than the smallest. */
const FLAT = 1.25;

function perRound(result: ThroughputResult, numerator: string, denominator: string): Summary | undefined {
	const a = result.contenders.find((contender) => contender.key === numerator);
	const b = result.contenders.find((contender) => contender.key === denominator);
	return a === undefined || b === undefined ? undefined : ratioPerRound(a.perTaskUs, b.perTaskUs);
}

function redisRatio(result: RedisResult, numerator: string, denominator: string): Summary | undefined {
	const a = result.rows.find((row) => row.key === numerator);
	const b = result.rows.find((row) => row.key === denominator);
	return a === undefined || b === undefined ? undefined : ratioPerRound(a.jobsPerSecond, b.jobsPerSecond);
}

export function targets(report: Report): Target[] {
	const list: Target[] = [];
	const { throughput, heap, scale, redis, cancel } = report;
	if (throughput !== undefined) {
		const c16 = perRound(throughput, 'runledger(16)', 'p-limit(16)');
		if (c16 !== undefined) list.push({ target: 'memory registry, concurrency 16, full lifecycle + listener: per-task time vs p-limit(16)', goal: '≤ 1.0×', measured: fmtRatio(c16), met: c16.median <= 1.0 });
		const unlimited = perRound(throughput, 'runledger(∞)', 'p-limit(∞)');
		const unlimitedVs16 = perRound(throughput, 'runledger(∞)', 'p-limit(16)');
		if (unlimited !== undefined) {
			list.push({
				target: 'memory registry, concurrency unlimited: per-task time vs p-limit(∞)',
				goal: '≤ 1.5×',
				measured: `${fmtRatio(unlimited)}${unlimitedVs16 === undefined ? '' : `; vs p-limit(16): ${fmtRatio(unlimitedVs16)}`}`,
				met: unlimited.median <= 1.5,
			});
		}
	}
	if (heap !== undefined) {
		list.push({ target: 'retained heap per finished run (no parameters, no result)', goal: '≤ 250 bytes', measured: `${fmtSummary(heap.runledger, 0)} bytes (naive tracker: ${fmt(heap.naive.median, 0)})`, met: heap.runledger.median <= 250 });
	}
	if (redis !== undefined) {
		const vsBull = redisRatio(redis, 'runledger-redis', 'bullmq');
		const vsNaive = redisRatio(redis, 'runledger-redis', 'naive-redis');
		const row = redis.rows.find((candidate) => candidate.key === 'runledger-redis');
		if (vsBull !== undefined) list.push({ target: 'Redis registry, concurrency 16: jobs/s vs BullMQ', goal: '≥ 2.5×', measured: fmtRatio(vsBull), met: vsBull.median >= 2.5 });
		if (vsNaive !== undefined) list.push({ target: 'Redis registry, concurrency 16: jobs/s vs the naive pipelined tracker', goal: '≥ 1.0×', measured: fmtRatio(vsNaive), met: vsNaive.median >= 1.0 });
		const loop = redis.closedLoop.find((candidate) => candidate.key === 'runledger-redis');
		if (loop !== undefined) {
			list.push({
				target: 'Redis round trips per run when a slot is free at start (closed loop)',
				goal: '≤ 2',
				measured: `${loop.clientCommandsPerRun.toFixed(2)} (${loop.topClient})${row === undefined ? '' : `; 10,000 at once: ${fmt(row.clientCommandsPerRun.median, 2)}`}`,
				met: loop.clientCommandsPerRun <= 2,
			});
		}
	}
	if (cancel !== undefined) {
		const row = (key: string): { p50Us: number; p99Us: number } => cancel.rows.find((candidate) => candidate.key === key)!;
		// One way, as the issue defines them: cancelTask to the abort, PUBLISH to the delivery.
		const ratio = row('cancel-one-way').p50Us / row('pubsub-one-way').p50Us;
		list.push({ target: 'cross-process cancel p50 vs the raw pub/sub round trip (PUBLISH → delivery)', goal: '≤ 2×', measured: `${ratio.toFixed(2)}× (${fmt(row('cancel-one-way').p50Us, 0)} µs vs ${fmt(row('pubsub-one-way').p50Us, 0)} µs)`, met: ratio <= 2 });
		list.push({ target: 'cross-process cancel p99 (cancelTask → signal aborted in the other process)', goal: '≤ 1 ms', measured: `${fmt(row('cancel-one-way').p99Us, 0)} µs (raw pub/sub p99: ${fmt(row('pubsub-one-way').p99Us, 0)} µs)`, met: row('cancel-one-way').p99Us <= 1000 });
	}
	if (scale !== undefined && scale.rows.length > 1) {
		const first = scale.rows[0]!;
		const last = scale.rows.at(-1)!;
		const timeGrowth = last.perTaskUs.median / first.perTaskUs.median;
		const heapGrowth = last.bytesPerRun.median / first.bytesPerRun.median;
		const sizes = scale.rows.map((row) => row.count.toLocaleString('en-US')).join(' / ');
		list.push({ target: `per-task time at ${sizes} runs kept`, goal: `flat (≤ ${FLAT}× from first to last)`, measured: `${scale.rows.map((row) => `${fmt(row.perTaskUs.median)} µs`).join(' / ')} (${timeGrowth.toFixed(2)}×)`, met: timeGrowth > 0 && timeGrowth <= FLAT });
		list.push({ target: `heap per run at ${sizes} runs kept`, goal: `flat (≤ ${FLAT}× from first to last)`, measured: `${scale.rows.map((row) => `${fmt(row.bytesPerRun.median, 0)} B`).join(' / ')} (${heapGrowth.toFixed(2)}×)`, met: heapGrowth > 0 && heapGrowth <= FLAT });
	}
	if (scale !== undefined && scale.listing.length > 0) {
		const listing = scale.listing[0]!;
		list.push({ target: `listing 100 runs of one status among ${scale.listingAmong.toLocaleString('en-US')} (median of ${listing.calls} calls)`, goal: '< 1 ms', measured: `${fmt(listing.p50Us, 1)} µs (p99 ${fmt(listing.p99Us, 1)} µs)`, met: listing.p50Us < 1000 });
	}
	return list;
}

function targetTable(report: Report): string {
	return table(['Target', 'Goal', 'Measured (median of per-round ratios, range)', 'Verdict'], targets(report).map((t) => [t.target, t.goal, t.measured, t.met ? 'met' : '**missed**']));
}

function throughputTable(result: ThroughputResult): string {
	const base = result.contenders.find((contender) => contender.key === 'p-limit(16)');
	return table(
		['Contender', 'µs per task: median (min–max)', 'vs p-limit(16), per round', 'tasks/s (median)', 'of which GC pauses, µs per task: median (share)', 'outside GC pauses: vs p-limit(16), per round'],
		result.contenders.map((contender) => {
			const gc = median(contender.gcUs);
			return [
				contender.label,
				fmtSummary(contender.summary),
				base === undefined ? '' : fmtRatio(ratioPerRound(contender.perTaskUs, base.perTaskUs)),
				fmt(1e6 / contender.summary.median, 0),
				`${fmt(gc)} (${fmt((100 * gc) / contender.summary.median, 0)} %)`,
				base === undefined ? '' : fmtRatio(ratioPerRound(contender.outsideGcUs, base.outsideGcUs)),
			];
		}),
	);
}

function heapTable(result: HeapResult): string {
	return table(
		['Store', 'bytes retained per finished run: median (min–max)'],
		[
			['runledger: `MemoryRunRegistry({ maxRuns: Infinity })`, runs made by a manager (concurrency 16)', fmtSummary(result.runledger, 0)],
			['naive tracker: `Map` of records, `crypto.randomUUID()` ids', fmtSummary(result.naive, 0)],
		],
	);
}

function scaleTables(result: ScaleResult): string {
	const rows = table(
		['Runs kept', 'Rounds', 'µs per task: median (min–max)', 'heap bytes per run: median (min–max)'],
		result.rows.map((row) => [row.count.toLocaleString('en-US'), String(row.rounds), fmtSummary(row.perTaskUs), fmtSummary(row.bytesPerRun, 0)]),
	);
	const listing = table(
		['Query', `among ${result.listingAmong.toLocaleString('en-US')} runs: p50`, 'p99', 'max'],
		result.listing.map((row) => [row.query, `${fmt(row.p50Us, 1)} µs`, `${fmt(row.p99Us, 1)} µs`, `${fmt(row.maxUs, 1)} µs`]),
	);
	return `${rows}\n\nListing, ${result.listing[0]?.calls ?? 0} calls each after 100 warm-up calls:\n\n${listing}`;
}

function redisTables(result: RedisResult): string {
	const base = result.rows.find((row) => row.key === 'bullmq');
	const naive = result.rows.find((row) => row.key === 'naive-redis');
	const main = table(
		['Contender', 'jobs/s: median (min–max)', 'vs BullMQ', 'vs naive', 'commands executed in Redis per run', 'commands sent per run', 'bytes in Redis per run'],
		result.rows.map((row) => [
			row.label,
			fmtSummary(row.throughput, 0),
			base === undefined ? '' : fmtRatio(ratioPerRound(row.jobsPerSecond, base.jobsPerSecond)),
			naive === undefined ? '' : fmtRatio(ratioPerRound(row.jobsPerSecond, naive.jobsPerSecond)),
			fmt(row.serverCommandsPerRun.median, 1),
			fmt(row.clientCommandsPerRun.median, 2),
			fmt(row.bytesPerRun.median, 0),
		]),
	);
	const tops = table(
		['Contender', 'top commands executed in Redis, per run (scripts’ own calls included)', 'top commands sent by the client, per run'],
		result.rows.map((row) => [row.key, row.topServer, row.topClient]),
	);
	const loop = table(
		['Contender', 'runs', 'jobs/s', 'commands sent (= round trips) per run'],
		result.closedLoop.map((row) => [row.key, `${row.runs} (${row.submitters} loops)`, fmt(row.jobsPerSecond, 0), `${row.clientCommandsPerRun.toFixed(2)} (${row.topClient})`]),
	);
	return `${main}\n\n${tops}\n\nClosed loop — ${result.closedLoop[0]?.submitters ?? 16} loops each starting a run and awaiting \`waitForRun\` before the next, so a slot is always free when a run starts:\n\n${loop}`;
}

function cancelTable(result: CancelResult): string {
	return table(
		['Path', 'p50', 'p90', 'p99', 'max'],
		result.rows.map((row) => [row.label, `${fmt(row.p50Us, 0)} µs`, `${fmt(row.p90Us, 0)} µs`, `${fmt(row.p99Us, 0)} µs`, `${fmt(row.maxUs, 0)} µs`]),
	);
}

export function renderConsole(report: Report): string {
	const parts = ['Targets', targetTable(report)];
	if (report.throughput !== undefined) parts.push(`\n1. ${report.throughput.count.toLocaleString('en-US')} trivial tasks`, throughputTable(report.throughput));
	if (report.heap !== undefined) parts.push('\n2. Retained heap', heapTable(report.heap));
	if (report.scale !== undefined) parts.push('\n3. Scale', scaleTables(report.scale));
	if (report.redis !== undefined) parts.push(`\n4. Redis, ${report.redis.count.toLocaleString('en-US')} jobs`, redisTables(report.redis));
	if (report.cancel !== undefined) parts.push('\n5. Cancel latency', cancelTable(report.cancel));
	return parts.join('\n');
}

export function renderMarkdown(report: Report): string {
	const { machine, throughput, heap, scale, redis, cancel } = report;
	const sections: string[] = [];
	sections.push(`# Benchmarks

Generated by \`${report.command}\` (\`bench/run.ts\`) on ${report.date.toISOString().slice(0, 16).replace('T', ' ')} UTC, in ${Math.round(report.durationMs / 1000)} s. Everything above the *Findings* section is rewritten by each run; the findings are kept.

Only ratios taken within one run mean anything here: the machine is shared and noisy, so absolute times move from run to run, while every contender of a table ran in the same process, in an order rotated each round, with a full GC before each timed run and then, between the GC and the run, ${WARM_UP_TASKS.toLocaleString('en-US')} untimed tasks of the same contender (the collection drops the hidden classes of objects no longer alive, and V8 the optimised code that checked for them: without this, a timed run would begin by optimising its code again, as a service does only after an idle spell). A ratio is the median of the ratios taken **per round**, with their range.

## Machine and versions

${table(['', ''], [
		['CPU', `${machine.cpu}, ${machine.cores} cores`],
		['Memory', machine.memory],
		['Load average (1 / 5 / 15 min) at start; at end', `${machine.loadAverage}; ${report.loadAtEnd}`],
		['OS', machine.platform],
		['Node', `${machine.node} (V8 ${machine.v8})`],
		['redis-server', machine.redisServer],
		...Object.entries(machine.packages).map(([name, version]): [string, string] => [name, version]),
	])}

Command: \`npm run bench\`, which is \`node --expose-gc --import tsx --import ./scripts/lua-hooks.mjs bench/run.ts\` (runledger is measured from \`src/\`, run through tsx; \`scripts/lua-hooks.mjs\` loads the Redis scripts as text).

## Targets (issue 5)

${targetTable(report)}

The cancel latencies are one way, from \`cancelTask\` in one process to the signal's abort in the other, both ends read from the machine's monotonic clock (see section 5); the pub/sub round trip they are compared with is PUBLISH to delivery, measured the same way.`);

	if (throughput !== undefined) {
		sections.push(`## 1. Trivial tasks: per-task time

${throughput.count.toLocaleString('en-US')} tasks \`async () => 1\` per timed run, ${throughput.rounds} rounds after one warm-up round. A runledger run is done when \`await manager.waitAll()\` resolves: every task settled and every state (queued, running, completed) written to the registry, with a listener on every lifecycle event. Each runledger run gets a fresh manager and registry; \`maxRuns\` is 200,000 unless said otherwise, so eviction is not what is measured (the *maxRuns 10k* row has the default 10,000).

The last two columns split each timed run at its garbage-collection pauses (\`PerformanceObserver\` \`gc\` entries within the run, summed): the pauses per task, and what is left — the contender's own code and the runtime's work for it (promises, the event loop) — against the same for p-limit(16), per round.

${throughputTable(throughput)}`);
	}
	if (heap !== undefined) {
		sections.push(`## 2. Retained heap per finished run

\`--expose-gc\`: a full GC and \`heapUsed\`, then ${heap.count.toLocaleString('en-US')} runs of \`async () => {}\` (no parameters, no result) to completion into a store that is kept, then a full GC and \`heapUsed\` again; (after − before) / runs. ${heap.rounds} rounds.

${heapTable(heap)}`);
	}
	if (scale !== undefined) {
		sections.push(`## 3. How cost grows with the runs kept

A manager (concurrency 16, a listener on every event) on \`MemoryRunRegistry({ maxRuns: Infinity })\`: per-task time (trivial tasks, timed after ${WARM_UP_TASKS.toLocaleString('en-US')} untimed ones on another manager, as in section 1) and heap per run kept (after − before a full GC), at each size; then listing among the largest registry.

${scaleTables(scale)}`);
	}
	if (redis !== undefined) {
		sections.push(`## 4. Redis

${redis.count.toLocaleString('en-US')} jobs per timed run, concurrency 16, on this benchmark's own redis-server (loopback, \`--save '' --appendonly no\`), ${redis.rounds} rounds after a warm-up with a tenth of the jobs, FLUSHDB before each contender. Time runs from the first add to the last completion (runledger: \`waitAll()\`, every state written). *Commands executed in Redis* are \`INFO commandstats\` deltas over the timed window, which count the calls scripts make as well as the EVALSHA or FCALL that runs them (a batch of many runs is one FCALL, hence the rounded 0.00); *commands sent* are counted on the client (every ioredis command written, pipelined or not; BullMQ's connections included). *Bytes in Redis* is the \`used_memory\` delta with the runs left in Redis, connections closed.

${redisTables(redis)}`);
	}
	if (cancel !== undefined) {
		sections.push(`## 5. Cross-process cancel latency

A child process (forked with the same Node flags) runs a runledger manager on Redis with a \`RedisCancellationBus\` and ${cancel.samples + 50} runs that wait on their signal. This process (its own manager, registry and bus on the same prefix) cancels them one at a time. **One way**: from just before \`cancelTask(runId)\` here to the moment the run's signal aborted in the child, both read from \`process.hrtime\` — CLOCK_MONOTONIC, which on Linux is one clock for every process of the machine (each sample is checked to lie between 0 and its round trip). **Round trip**: to the arrival of the child's IPC report of the abort, one IPC hop more. The raw pub/sub delivery (PUBLISH on this process's client → a subscriber connection in the child) is measured the same two ways, and a bare IPC round trip besides, all interleaved with the cancels so that noise hits them alike. ${cancel.samples} samples each after 50 warm-up ones.

${cancelTable(cancel)}`);
	}
	return `${sections.join('\n\n')}\n`;
}

const DEFAULT_FINDINGS = `## Findings

(Hand-written: what the profiles showed and what was changed. \`npm run bench\` keeps everything between the markers.)`;

/** Writes docs/benchmarks.md: the generated part, then the findings section kept from the previous file. */
export async function writeReport(generated: string): Promise<string> {
	let findings = DEFAULT_FINDINGS;
	try {
		const previous = await readFile(DOCS_PATH, 'utf8');
		const begin = previous.indexOf(FINDINGS_BEGIN);
		const end = previous.indexOf(FINDINGS_END);
		if (begin !== -1 && end > begin) findings = previous.slice(begin + FINDINGS_BEGIN.length, end).trim();
	} catch {
		// First run.
	}
	await writeFile(DOCS_PATH, `${generated}\n${FINDINGS_BEGIN}\n${findings}\n${FINDINGS_END}\n`);
	return DOCS_PATH;
}

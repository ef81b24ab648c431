/**
 * runledger quick start: six background runs of four modules on the in-memory registry.
 *
 *   npm run demo          (= tsx examples/quickstart.ts)
 *
 * Concurrency is limited (3 at once, 1 per video render, 1 per image resize), so some runs wait
 * QUEUED. One run fails with a typed error, one is cancelled mid-run through `cancelTask`, the
 * rest complete. In a terminal the runs are drawn as a live view; when stdout is not a TTY
 * (piped, CI) one plain line is printed per state change instead. Ends after about 8 seconds
 * with a summary table and `manager.shutdown()`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import logUpdate from 'log-update';
import picocolors from 'picocolors';

import { BackgroundTaskManager, MemoryRunRegistry } from '../src/index.js';
import type { Run, RunStatus } from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// The work: ordinary async functions that report progress and honour their AbortSignal.
// ---------------------------------------------------------------------------------------------

/** What a task function uses of the context runledger passes it. */
interface TaskContext {
	readonly signal: AbortSignal;
	reportProgress(percent: number, message?: string): void;
}

/** A typed error, as a real summarizer client might throw; its `name` and `code` end up on the run. */
class ContextLengthError extends Error {
	override name = 'ContextLengthError';
	readonly code = 'CONTEXT_TOO_LONG';
}

/** `count` steps of `stepMs` each, reporting progress after every step as a share of `total` steps. */
async function steps(ctx: TaskContext, count: number, stepMs: number, describe: (step: number) => string, total = count): Promise<void> {
	for (let step = 1; step <= count; step++) {
		await delay(stepMs, undefined, { signal: ctx.signal });
		ctx.reportProgress(Math.round((step * 100) / total), describe(step));
	}
}

interface Job {
	readonly moduleId: string;
	readonly moduleName: string;
	readonly label: string;
	readonly priority?: 'critical' | 'high' | 'normal' | 'low';
	readonly expected: RunStatus;
	readonly work: (ctx: TaskContext) => Promise<unknown>;
}

const jobs: Job[] = [
	{
		moduleId: 'video-render',
		moduleName: 'Video render',
		label: 'intro.mp4',
		priority: 'high',
		expected: 'completed',
		work: async (ctx) => {
			await steps(ctx, 12, 400, (step) => `encoding frame ${step * 40}/480`);
			return { url: 'https://cdn.example.com/intro.mp4', frames: 480 };
		},
	},
	{
		// Waits QUEUED until intro.mp4 frees the only video-render slot.
		moduleId: 'video-render',
		moduleName: 'Video render',
		label: 'outro.mp4',
		expected: 'completed',
		work: async (ctx) => {
			await steps(ctx, 10, 350, (step) => `encoding frame ${step * 36}/360`);
			return { url: 'https://cdn.example.com/outro.mp4', frames: 360 };
		},
	},
	{
		moduleId: 'image-resize',
		moduleName: 'Image resize',
		label: 'thumbnails',
		expected: 'completed',
		work: async (ctx) => {
			await steps(ctx, 8, 200, (step) => `image ${step * 5}/40`);
			return { images: 40 };
		},
	},
	{
		// Fails at 70 %: the thrown error is recorded on the run as { name, message, code }.
		moduleId: 'llm-summary',
		moduleName: 'LLM summary',
		label: 'chapter-3',
		expected: 'failed',
		work: async (ctx) => {
			await steps(ctx, 7, 300, (step) => `chunk ${step}/10`, 10);
			throw new ContextLengthError('chunk 8 exceeds the 128k-token context window');
		},
	},
	{
		// Cancelled through `cancelTask` once it reports 40 % (see the 'progress' listener below).
		moduleId: 'import-csv',
		moduleName: 'CSV import',
		label: 'customers.csv',
		expected: 'cancelled',
		work: async (ctx) => {
			await steps(ctx, 12, 300, (step) => `row ${step * 1000}/12000`);
			return { rows: 12_000 };
		},
	},
	{
		// Low priority: starts after every waiting run of a higher priority that can start.
		moduleId: 'image-resize',
		moduleName: 'Image resize',
		label: 'banners',
		priority: 'low',
		expected: 'completed',
		work: async (ctx) => {
			await steps(ctx, 8, 200, (step) => `banner ${step}/8`);
			return { images: 8 };
		},
	},
];

// ---------------------------------------------------------------------------------------------
// The manager.
// ---------------------------------------------------------------------------------------------

const registry = new MemoryRunRegistry();
const manager = new BackgroundTaskManager(registry, {
	concurrency: 3,
	concurrencyByModule: { 'video-render': 1, 'image-resize': 1 },
});

// ---------------------------------------------------------------------------------------------
// The view: a live redraw in a terminal, one plain line per state change otherwise.
// ---------------------------------------------------------------------------------------------

const live = process.stdout.isTTY === true;
const pc = picocolors.createColors(live && picocolors.isColorSupported);
const startedAt = Date.now();
const elapsed = (): string => `${((Date.now() - startedAt) / 1000).toFixed(2)}s`;

interface Row {
	run: Run;
	note?: string;
}

const rows = new Map<string, Row>();
const eventLog: string[] = [];

const labelOf = (run: Run): string => {
	const label = run.metadata?.['label'];
	return typeof label === 'string' ? label : run.runId;
};

function record(run: Run, note?: string): void {
	const row = rows.get(run.runId);
	const previous = row?.run.status;
	if (row === undefined) rows.set(run.runId, note === undefined ? { run } : { run, note });
	else {
		// Events of one run arrive in order, but never let a late snapshot move a row backwards.
		if (run.updatedAt >= row.run.updatedAt || run.status !== row.run.status) row.run = run;
		if (note !== undefined) row.note = note;
	}

	if (previous === run.status) return;
	const percent = run.progress === undefined ? '' : `  ${run.progress.percent}%`;
	const detail = note === undefined ? '' : `  ${note}`;
	const line = `${elapsed().padStart(7)}  ${run.moduleId.padEnd(13)} ${labelOf(run).padEnd(14)} ${run.status}${percent}${detail}`;
	if (live) {
		eventLog.push(line);
		if (eventLog.length > 5) eventLog.shift();
		draw();
	} else {
		console.log(line);
	}
}

const icons: Record<RunStatus, string> = {
	queued: pc.gray('◌'),
	running: pc.cyan('●'),
	completed: pc.green('✔'),
	failed: pc.red('✖'),
	cancelled: pc.yellow('⊘'),
};
const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const paint: Record<RunStatus, (text: string) => string> = {
	queued: pc.gray,
	running: pc.cyan,
	completed: pc.green,
	failed: pc.red,
	cancelled: pc.yellow,
};

function bar(percent: number, status: RunStatus): string {
	const width = 24;
	const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
	return paint[status]('█'.repeat(filled)) + pc.dim('░'.repeat(width - filled));
}

let frame = 0;
function draw(): void {
	if (!live) return;
	const stats = manager.getStats();
	const width = process.stdout.columns || 100;
	const lines = [
		pc.bold('runledger demo') + pc.dim('  concurrency 3 · video-render 1 · image-resize 1'),
		'',
		...[...rows.values()].map(({ run, note }) => {
			const icon = run.status === 'running' ? pc.cyan(spinner[frame % spinner.length]!) : icons[run.status];
			const percent = run.progress?.percent ?? 0;
			// Cut the message to the terminal width: a wrapped row would push the view around.
			const message = truncate(note ?? run.error?.message ?? run.progress?.message ?? '', Math.max(10, width - 75));
			return `${icon} ${run.moduleId.padEnd(13)} ${labelOf(run).padEnd(14)} ${bar(percent, run.status)} ${`${percent}%`.padStart(4)}  ${paint[run.status](run.status.padEnd(9))} ${pc.dim(message)}`;
		}),
		'',
		pc.dim(
			`queued ${stats.queued} · running ${stats.running} · draining ${stats.draining} · ` +
				`completed ${stats.completed} · failed ${stats.failed} · cancelled ${stats.cancelled} · ${elapsed()}`,
		),
		'',
		...eventLog.map((line) => pc.dim(truncate(line, width - 1))),
	];
	logUpdate(lines.join('\n'));
}

manager.on('queued', (run) => record(run));
manager.on('started', (run) => record(run));
manager.on('completed', (run) => record(run));
manager.on('failed', (run) => record(run, run.error === undefined ? undefined : `${run.error.name}: ${run.error.message}`));
manager.on('cancelled', (run) => record(run, rows.get(run.runId)?.note));
manager.on('error', (error) => {
	// Registry write failures and the like: reported, never thrown into the host.
	const line = `${elapsed().padStart(7)}  runledger error ${error.code}: ${error.message}`;
	if (live) eventLog.push(line);
	else console.error(line);
});

// The stop button: cancel the CSV import once it is 40 % done.
let stopPressed = false;
manager.on('progress', (run) => {
	const row = rows.get(run.runId);
	if (row !== undefined && run.status === row.run.status) row.run = run;
	if (!stopPressed && run.moduleId === 'import-csv' && (run.progress?.percent ?? 0) >= 40) {
		stopPressed = true;
		const reason = 'user pressed stop';
		if (row !== undefined) row.note = `cancelTask: ${reason}`;
		manager.cancelTask(run.runId, reason).then(
			(cancelled) => {
				if (!live) console.log(`${elapsed().padStart(7)}  ${run.moduleId.padEnd(13)} ${labelOf(run).padEnd(14)} cancelTask() → ${cancelled}`);
			},
			(error: unknown) => console.error('cancelTask failed:', error),
		);
	}
});

// ---------------------------------------------------------------------------------------------
// Start everything; startTask returns the run id at once.
// ---------------------------------------------------------------------------------------------

const timer = live ? setInterval(() => {
	frame++;
	draw();
}, 80) : undefined;

const started: Array<{ runId: string; job: Job }> = [];
for (const job of jobs) {
	const runId = manager.startTask(
		{
			moduleId: job.moduleId,
			moduleName: job.moduleName,
			...(job.priority === undefined ? {} : { priority: job.priority }),
			parameters: { file: job.label },
			metadata: { label: job.label },
			timeoutMs: 30_000,
		},
		async ({ signal, reportProgress }) => job.work({ signal, reportProgress }),
	);
	started.push({ runId, job });
}

const waited = await manager.waitAll({ timeoutMs: 45_000 });
if (timer !== undefined) clearInterval(timer);
draw();
if (live) logUpdate.done();
if (!waited.settled) console.error(`waitAll timed out; still pending: ${waited.pending.join(', ')}`);

// ---------------------------------------------------------------------------------------------
// Summary, read back from the registry.
// ---------------------------------------------------------------------------------------------

await manager.flush();
const table: string[][] = [['module', 'file', 'status', 'progress', 'took', 'result / error']];
let unexpected = 0;
const counts: Record<string, number> = { completed: 0, failed: 0, cancelled: 0 };
for (const { runId, job } of started) {
	const run = await manager.getRun(runId);
	if (run === undefined) {
		table.push([job.moduleId, job.label, 'missing', '', '', '']);
		unexpected++;
		continue;
	}

	if (run.status !== job.expected) unexpected++;
	counts[run.status] = (counts[run.status] ?? 0) + 1;
	const took = run.startedAt !== undefined && run.completedAt !== undefined ? `${((run.completedAt - run.startedAt) / 1000).toFixed(1)}s` : '-';
	const outcome =
		run.status === 'completed'
			? JSON.stringify(run.result)
			: run.error === undefined
				? ''
				: `${run.error.name}${run.error.code === undefined ? '' : ` [${run.error.code}]`}: ${run.error.message}`;
	table.push([run.moduleId, labelOf(run), run.status, `${run.progress?.percent ?? 0}%`, took, truncate(outcome, 100)]);
}

const widths = table[0]!.map((_, column) => Math.max(...table.map((cells) => cells[column]!.length)));
console.log('');
table.forEach((cells, index) => {
	const line = cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
	const status = cells[2] as RunStatus;
	console.log(index === 0 ? pc.bold(line) : status in paint ? line.replace(status, paint[status](status)) : line);
});

console.log('');
console.log(`summary: ${counts['completed']} completed, ${counts['failed']} failed, ${counts['cancelled']} cancelled`);

const report = await manager.shutdown({ graceMs: 1_000 });
console.log(
	`shutdown: ${report.finished.length} finished, ${report.cancelled.length} cancelled, ` +
		`${report.unsettled.length} unsettled, ${report.unflushed.length} unflushed`,
);

if (unexpected > 0) {
	console.error(`${unexpected} run(s) did not end as expected`);
	process.exitCode = 1;
}

function truncate(text: string, max: number): string {
	return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

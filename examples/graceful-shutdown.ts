/**
 * Graceful shutdown: what a worker does on SIGTERM (a deploy, `kubectl delete pod`) or SIGINT (Ctrl-C).
 *
 *   npx tsx examples/graceful-shutdown.ts           sends itself SIGTERM after 3 seconds
 *   npx tsx examples/graceful-shutdown.ts --wait    waits for a real signal: press Ctrl-C, or
 *                                                   `kill -TERM <pid>` from another terminal
 *
 * Four runs are in flight when the signal arrives:
 *   send-email      finishes within the grace period               → report.finished
 *   video-render    honours its AbortSignal, stops when cancelled  → report.cancelled
 *   legacy-export   ignores its signal and keeps running           → report.timedOut + report.unsettled (FAILED)
 *   nightly-report  still waiting for a slot                       → report.cancelled
 *
 * `shutdown({ graceMs, abortGraceMs })` stops taking new tasks, cancels the queued ones, lets the
 * running ones finish for `graceMs`, then aborts the rest and waits up to `abortGraceMs` for their
 * functions to settle: those that do are CANCELLED, those that do not FAILED with a
 * ShutdownTimeoutError. Finally it flushes pending registry writes. Calling it twice returns the
 * same report, so a second signal is harmless.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { BackgroundTaskManager, MemoryRunRegistry } from '../src/index.js';
import type { Run } from '../src/index.js';

const GRACE_MS = 2_000;
const ABORT_GRACE_MS = 1_000;
const SELF_SIGNAL_AFTER_MS = 3_000;

const t0 = performance.now();
const log = (message: string): void => {
	console.log(`${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s  ${message}`);
};

const registry = new MemoryRunRegistry();
const manager = new BackgroundTaskManager(registry, { concurrency: 3, instanceId: `worker-${process.pid}` });

const labels = new Map<string, string>();
const describe = (runId: string): string => `${labels.get(runId) ?? '?'} (${runId})`;

for (const event of ['started', 'completed', 'failed', 'cancelled'] as const) {
	manager.on(event, (run: Run) => log(`${event.padEnd(9)} ${describe(run.runId)}`));
}
manager.on('error', (error) => log(`runledger error ${error.code}: ${error.message}`));

function start(moduleId: string, fn: (signal: AbortSignal) => Promise<unknown>): void {
	const runId = manager.startTask({ moduleId }, async ({ signal }) => fn(signal));
	labels.set(runId, moduleId);
}

// Finishes 1 s after the signal: inside the grace period.
start('send-email', async (signal) => {
	await delay(SELF_SIGNAL_AFTER_MS + 1_000, undefined, { signal });
	return { sent: 1 };
});

// Long and cooperative: aborted when the grace period ends, and stops at once.
start('video-render', async (signal) => {
	for (let frame = 0; frame < 600; frame++) await delay(100, undefined, { signal });
	return { frames: 600 };
});

// Long and deaf to its signal (say, a library call that takes no AbortSignal): it is marked
// cancelled, keeps running, and is reported as unsettled once `abortGraceMs` is over.
start('legacy-export', async () => {
	await delay(60_000);
	return { exported: true };
});

// concurrency is 3, so this one waits QUEUED and is cancelled as soon as shutdown begins.
start('nightly-report', async (signal) => {
	await delay(1_000, undefined, { signal });
	return { pages: 12 };
});

log(`pid ${process.pid}: ${manager.getActiveTaskCount()} runs active`);

let shuttingDown = false;
async function onSignal(signal: NodeJS.Signals): Promise<void> {
	if (shuttingDown) {
		log(`${signal} again: already shutting down`);
		return;
	}

	shuttingDown = true;
	log(`${signal} received: shutdown({ graceMs: ${GRACE_MS}, abortGraceMs: ${ABORT_GRACE_MS} })`);
	const report = await manager.shutdown({ graceMs: GRACE_MS, abortGraceMs: ABORT_GRACE_MS });

	console.log('');
	console.log('shutdown report');
	for (const key of ['finished', 'cancelled', 'timedOut', 'unsettled', 'unflushed'] as const) {
		const ids = report[key];
		console.log(`  ${key.padEnd(10)} ${String(ids.length).padStart(2)}  ${ids.length === 0 ? '-' : ids.map((id) => labels.get(id) ?? id).join(', ')}`);
	}

	console.log('');
	console.log('as recorded in the registry');
	for (const runId of labels.keys()) {
		const run = await registry.getRun(runId);
		console.log(`  ${(labels.get(runId) ?? runId).padEnd(15)} ${run?.status ?? 'missing'}`);
	}

	// Unsettled functions still hold timers (legacy-export's 60 s sleep): exit explicitly rather
	// than wait for them. An orchestrator that should notice lost work could exit non-zero when
	// `report.unsettled` or `report.unflushed` is not empty.
	process.exit(0);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
	process.on(signal, (received) => void onSignal(received));
}

if (process.argv.includes('--wait')) {
	log('waiting for SIGTERM or SIGINT (Ctrl-C)');
} else {
	setTimeout(() => {
		log('sending myself SIGTERM (pass --wait to send a signal yourself)');
		process.kill(process.pid, 'SIGTERM');
	}, SELF_SIGNAL_AFTER_MS);
}

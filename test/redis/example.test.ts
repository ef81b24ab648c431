/**
 * examples/multi-instance.ts runs as its header says — `npx tsx --import ./scripts/lua-hooks.mjs
 * examples/multi-instance.ts` with REDIS_URL — against the test redis-server: two real processes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { freePort } from '../support/redis-server.js';
import { redisUrl } from './support.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ansi = /\u001B\[[0-9;?]*[A-Za-z]/g;

interface Exit {
	readonly code: number | null;
	readonly signal: NodeJS.Signals | null;
	readonly stdout: string;
	readonly stderr: string;
}

/** Runs the example in its own process group; SIGKILLs the group after `timeoutMs`. */
function runExample(url: string, timeoutMs: number): Promise<Exit> {
	const child = spawn('npx', ['tsx', '--import', './scripts/lua-hooks.mjs', 'examples/multi-instance.ts'], {
		cwd: root,
		env: { ...process.env, REDIS_URL: url, NO_COLOR: '1' },
		stdio: ['ignore', 'pipe', 'pipe'],
		detached: true,
	});
	let stdout = '';
	let stderr = '';
	child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
	child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
	const timer = setTimeout(() => {
		try {
			if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
		} catch {
			// Already gone.
		}
	}, timeoutMs);
	return new Promise((resolve, reject) => {
		child.once('error', reject);
		child.once('close', (code, signal) => {
			clearTimeout(timer);
			resolve({ code, signal, stdout: stdout.replace(ansi, ''), stderr: stderr.replace(ansi, '') });
		});
	});
}

describe.skipIf(redisUrl === null)('examples/multi-instance.ts', () => {
	it('a worker process runs 4 renders; the main process lists them from Redis, cancels the longest (the worker aborts it), the other 3 complete; both exit 0', async () => {
		const result = await runExample(redisUrl as string, 60_000);
		const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
		expect(result.code, context).toBe(0);
		// Nothing went wrong on the way: no runledger `error` event, no Redis error, no stack trace.
		expect(result.stderr, context).not.toMatch(/runledger:|Redis:|Error|\bat /);

		const lines = result.stdout.split('\n');
		// The main process saw the worker's four runs in Redis.
		expect(lines, context).toContain('[main]   worker-1 is running 4 runs (read from Redis):');
		const cancel = /^\[main\] {3}cancelTask\((\S+)\) → true$/.exec(lines.find((line) => line.startsWith('[main]   cancelTask(')) ?? '');
		expect(cancel, context).not.toBeNull();
		const cancelledId = cancel![1]!;

		// The task in the worker process saw its signal abort.
		expect(lines.some((line) => line.startsWith(`[worker] ${cancelledId} (credits): signal aborted`) && line.includes('not needed any more')), context).toBe(true);
		expect(lines, context).toContain('[worker] all settled: 3 completed, 1 cancelled');

		// Final states, read from Redis by the main process: one cancelled, three completed.
		const finals = lines
			.map((line) => /^\[main\] {5}(\S+) +(\S+) +(completed|cancelled|failed|running|queued) +(.*)$/.exec(line))
			.filter((match) => match !== null)
			.map((match) => ({ runId: match[1], clip: match[2], status: match[3], outcome: match[4] }));
		expect(finals, context).toHaveLength(4);
		expect(finals.filter((run) => run.status === 'cancelled'), context).toEqual([
			{ runId: cancelledId, clip: 'credits', status: 'cancelled', outcome: expect.stringContaining('CancelledError: ') },
		]);
		const completed = finals.filter((run) => run.status === 'completed');
		expect(completed.map((run) => run.clip).sort(), context).toEqual(['intro', 'scene-1', 'scene-2']);
		for (const run of completed) expect(JSON.parse(run.outcome!), context).toMatchObject({ clip: run.clip, frames: expect.any(Number) });
		expect(lines, context).toContain('[main]   worker exited with code 0');
	}, 90_000);

	it('says Redis is unreachable and exits 1 when nothing listens at REDIS_URL', async () => {
		const port = await freePort();
		const result = await runExample(`redis://127.0.0.1:${port}`, 30_000);
		expect(result.code, result.stderr).toBe(1);
		expect(result.stderr).toContain(`Cannot reach Redis at redis://127.0.0.1:${port}`);
		expect(result.stderr).toContain('redis-server --port 6390 &');
		expect(result.stdout).toBe('');
	}, 60_000);
});

/**
 * The examples run as a user runs them: `npx tsx examples/….ts` in a child process, stdout piped.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const ansi = /\u001B\[[0-9;?]*[A-Za-z]/g;

interface Exit {
	code: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
}

interface Started {
	child: ChildProcess;
	stdout: () => string;
	stderr: () => string;
	exited: Promise<Exit>;
}

/**
 * Starts `npx tsx <script>` in its own process group, so that the whole tree can be signalled.
 * Examples that get a signal from the test run under the local tsx binary instead: npm re-raises a
 * signal it received on itself once its child has exited, which would hide the example's exit code.
 */
function startExample(script: string, args: string[] = [], options: { env?: Record<string, string>; signalled?: boolean } = {}): Started {
	const command = options.signalled === true ? join(root, 'node_modules', '.bin', 'tsx') : 'npx';
	const child = spawn(command, [...(options.signalled === true ? [] : ['tsx']), script, ...args], {
		cwd: root,
		env: { ...process.env, NO_COLOR: '1', ...options.env },
		stdio: ['ignore', 'pipe', 'pipe'],
		detached: true,
	});
	let stdout = '';
	let stderr = '';
	child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
	const exited = new Promise<Exit>((resolve, reject) => {
		child.once('error', reject);
		child.once('close', (code, signal) =>
			resolve({ code, signal, stdout: stdout.replace(ansi, ''), stderr: stderr.replace(ansi, '') }),
		);
	});
	return { child, stdout: () => stdout.replace(ansi, ''), stderr: () => stderr, exited };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
	if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
	try {
		process.kill(-child.pid, signal);
	} catch {
		// Already gone.
	}
}

/** Ends a started example: SIGTERM to its process group, SIGKILL if it is still there after `graceMs`. */
async function stopExample(started: Started, graceMs = 10_000): Promise<Exit> {
	signalGroup(started.child, 'SIGTERM');
	const timer = setTimeout(() => signalGroup(started.child, 'SIGKILL'), graceMs);
	try {
		return await started.exited;
	} finally {
		clearTimeout(timer);
	}
}

async function runExample(script: string, timeoutMs: number, args: string[] = []): Promise<Exit> {
	const started = startExample(script, args);
	const timer = setTimeout(() => signalGroup(started.child, 'SIGKILL'), timeoutMs);
	try {
		return await started.exited;
	} finally {
		clearTimeout(timer);
	}
}

async function waitForOutput(started: Started, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const match = pattern.exec(started.stdout());
		if (match !== null) return match;
		if (started.child.exitCode !== null || started.child.signalCode !== null) {
			throw new Error(`The example exited before printing ${pattern}\nstdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`);
		}
		if (Date.now() > deadline) {
			throw new Error(`Timed out waiting for ${pattern}\nstdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

describe('examples/quickstart.ts', () => {
	it('prints one plain line per state change when stdout is not a TTY, and every run ends as planned', async () => {
		const result = await runExample('examples/quickstart.ts', 60_000);
		const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
		expect(result.code, context).toBe(0);

		// Plain lines, no cursor movement: "  1.23s  video-render  intro.mp4  running …".
		expect(result.stdout).not.toMatch(/\u001B\[/);
		const changes = [...result.stdout.matchAll(/^\s*\d+\.\d+s\s+(\S+)\s+(\S+)\s+(queued|running|completed|failed|cancelled)\b/gm)].map(
			([, moduleId, label, status]) => ({ run: `${moduleId} ${label}`, status }),
		);

		const terminal = new Map<string, string>();
		for (const { run, status } of changes) {
			if (status === 'completed' || status === 'failed' || status === 'cancelled') {
				expect(terminal.has(run), `${run} reached a second terminal state\n${context}`).toBe(false);
				terminal.set(run, status);
			}
		}

		expect(Object.fromEntries(terminal), context).toEqual({
			'video-render intro.mp4': 'completed',
			'video-render outro.mp4': 'completed',
			'image-resize thumbnails': 'completed',
			'llm-summary chapter-3': 'failed',
			'import-csv customers.csv': 'cancelled',
			'image-resize banners': 'completed',
		});

		// Every run was seen running before it ended, and nothing changed after its terminal state.
		for (const run of terminal.keys()) {
			const statuses = changes.filter((change) => change.run === run).map((change) => change.status);
			expect(statuses, `${run}\n${context}`).toContain('running');
			expect(statuses.indexOf('running'), `${run}\n${context}`).toBeLessThan(statuses.length - 1);
			expect(statuses.at(-1), `${run}\n${context}`).toBe(terminal.get(run));
		}

		// The failure is the typed error the task threw; the cancellation went through cancelTask.
		expect(result.stdout).toMatch(/llm-summary\s+chapter-3\s+failed.*ContextLengthError/);
		expect(result.stdout).toMatch(/cancelTask\(\) → true/);

		// The summary table and the shutdown report close the output.
		expect(result.stdout).toMatch(/^summary: 4 completed, 1 failed, 1 cancelled$/m);
		expect(result.stdout).toMatch(/^shutdown: \d+ finished, \d+ cancelled, 0 unsettled, 0 unflushed$/m);
		expect(result.stdout).toMatch(/^module\s+file\s+status\s+progress\s+took\s+result \/ error$/m);
	}, 90_000);
});

describe('examples/graceful-shutdown.ts', () => {
	it('shuts down on SIGTERM and reports finished, cancelled, timed-out and unsettled runs', async () => {
		const result = await runExample('examples/graceful-shutdown.ts', 60_000);
		const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
		expect(result.code, context).toBe(0);
		expect(result.stdout).toMatch(/SIGTERM received: shutdown\(/);

		const report = new Map<string, { count: number; labels: string[] }>();
		for (const [, key, count, labels] of result.stdout.matchAll(/^ {2}(finished|cancelled|timedOut|unsettled|unflushed)\s+(\d+) {2}(.*)$/gm)) {
			report.set(key!, { count: Number(count), labels: labels === '-' ? [] : labels!.split(', ') });
		}

		expect([...report.keys()].sort(), context).toEqual(['cancelled', 'finished', 'timedOut', 'unflushed', 'unsettled']);
		expect(report.get('finished')!.labels, context).toEqual(['send-email']);
		expect(report.get('cancelled')!.labels, context).toEqual(expect.arrayContaining(['video-render', 'nightly-report']));
		expect(report.get('cancelled')!.labels, context).not.toContain('send-email');
		expect(report.get('timedOut')!.labels, context).toEqual(['legacy-export']);
		expect(report.get('cancelled')!.labels, context).not.toContain('legacy-export');
		expect(report.get('unsettled')!.labels, context).toEqual(['legacy-export']);
		expect(report.get('unflushed')!.count, context).toBe(0);
		for (const { count, labels } of report.values()) expect(labels).toHaveLength(count);

		// The registry has the final word for each run, including the one whose function never stopped.
		expect(result.stdout).toMatch(/^ {2}send-email\s+completed$/m);
		expect(result.stdout).toMatch(/^ {2}video-render\s+cancelled$/m);
		expect(result.stdout).toMatch(/^ {2}legacy-export\s+failed$/m);
		expect(result.stdout).toMatch(/^ {2}nightly-report\s+cancelled$/m);
	}, 90_000);

	it('waits for a real signal with --wait', async () => {
		const started = startExample('examples/graceful-shutdown.ts', ['--wait'], { signalled: true });
		try {
			await waitForOutput(started, /waiting for SIGTERM or SIGINT/, 30_000);
			await waitForOutput(started, /started\s+legacy-export/, 30_000);
			signalGroup(started.child, 'SIGINT');
			const result = await started.exited;
			expect(result.code, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
			expect(result.stdout).toMatch(/SIGINT received: shutdown\(/);
			expect(result.stdout).not.toMatch(/sending myself SIGTERM/);
			expect(result.stdout).toMatch(/^ {2}unsettled\s+1 {2}legacy-export$/m);
		} finally {
			await stopExample(started, 1_000);
		}
	}, 90_000);
});

describe('examples/http-endpoint.ts', () => {
	let server: Started;
	let base: string;

	beforeAll(async () => {
		server = startExample('examples/http-endpoint.ts', [], { env: { PORT: '0' }, signalled: true });
		const [, port] = await waitForOutput(server, /listening on http:\/\/127\.0\.0\.1:(\d+)/, 30_000);
		base = `http://127.0.0.1:${port}`;
	}, 60_000);

	afterAll(async () => {
		if (server === undefined) return;
		const result = await stopExample(server);
		// SIGTERM is handled: the server closes and the manager shuts down before the exit.
		expect(result.stdout).toMatch(/SIGTERM: closing the server/);
		expect(result.stdout).toMatch(/^shutdown: /m);
	}, 30_000);

	async function json(response: Response): Promise<Record<string, unknown>> {
		expect(response.headers.get('content-type')).toMatch(/^application\/json/);
		return (await response.json()) as Record<string, unknown>;
	}

	async function post(body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
		return fetch(`${base}/renders`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
	}

	it('POST /renders answers 202 with the run id and status URL, and the run can be followed to completion', async () => {
		const response = await post({ template: 'intro', frames: 4 });
		expect(response.status).toBe(202);
		const body = await json(response);
		expect(body['runId']).toEqual(expect.any(String));
		expect(body['statusUrl']).toBe(`/runs/${encodeURIComponent(body['runId'] as string)}`);
		expect(response.headers.get('location')).toBe(body['statusUrl']);

		let run: Record<string, unknown> = {};
		const deadline = Date.now() + 10_000;
		do {
			const status = await fetch(`${base}${body['statusUrl'] as string}`);
			expect(status.status).toBe(200);
			run = await json(status);
			if (run['status'] === 'completed') break;
			await new Promise((resolve) => setTimeout(resolve, 50));
		} while (Date.now() < deadline);

		expect(run).toMatchObject({
			runId: body['runId'],
			moduleId: 'video-render',
			status: 'completed',
			parameters: { template: 'intro', frames: 4 },
			result: { frames: 4 },
		});
	});

	it('GET shows a run in progress, DELETE cancels it (200) and a second DELETE answers 409', async () => {
		const created = await json(await post({ template: 'long-one', frames: 2_000, itemId: 'chat-42' }));
		const runUrl = `${base}/runs/${encodeURIComponent(created['runId'] as string)}`;

		const before = await fetch(runUrl);
		expect(before.status).toBe(200);
		expect(['queued', 'running']).toContain((await json(before))['status']);

		const cancelled = await fetch(runUrl, { method: 'DELETE' });
		expect(cancelled.status).toBe(200);
		expect(await json(cancelled)).toMatchObject({ runId: created['runId'], status: 'cancelled' });

		const after = await json(await fetch(runUrl));
		expect(after['status']).toBe('cancelled');
		expect(after['error']).toMatchObject({ name: 'CancelledError', code: 'ERR_CANCELLED' });
		expect(after['error']).not.toHaveProperty('stack');

		const again = await fetch(runUrl, { method: 'DELETE' });
		expect(again.status).toBe(409);
		const conflict = await json(again);
		expect(conflict['error']).toMatchObject({ code: 'RUN_NOT_CANCELLABLE' });
	});

	it('answers 404 JSON for unknown runs and routes', async () => {
		for (const [method, path] of [
			['GET', '/runs/no-such-run'],
			['DELETE', '/runs/no-such-run'],
			['GET', '/nothing-here'],
		] as const) {
			const response = await fetch(`${base}${path}`, { method });
			expect(response.status, `${method} ${path}`).toBe(404);
			const body = await json(response);
			expect(body['error']).toMatchObject({ code: expect.any(String), message: expect.any(String) });
		}
	});

	it('lists runs with filters', async () => {
		const response = await fetch(`${base}/runs?status=completed,cancelled&limit=10`);
		expect(response.status).toBe(200);
		const page = await json(response);
		expect(Array.isArray(page['runs'])).toBe(true);
		for (const run of page['runs'] as Array<Record<string, unknown>>) expect(['completed', 'cancelled']).toContain(run['status']);
		expect(JSON.stringify(page)).not.toContain('"stack"');

		const bad = await fetch(`${base}/runs?status=sleeping`);
		expect(bad.status).toBe(400);
	});

	it('validates input and answers with JSON errors, never stack traces', async () => {
		const cases: Array<[body: unknown, headers: Record<string, string> | undefined, status: number]> = [
			['{"template": "intro",', undefined, 400],
			[{ frames: 10 }, undefined, 400],
			[{ template: 'intro', frames: 0 }, undefined, 400],
			[{ template: 'intro', frames: 1.5 }, undefined, 400],
			[{ template: '../../etc/passwd' }, undefined, 400],
			[{ template: 'intro', priority: 'urgent' }, undefined, 400],
			[{ template: 'intro', extra: true }, undefined, 400],
			[[1, 2, 3], undefined, 400],
			['template=intro', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
			[{ template: 'x'.repeat(20_000) }, undefined, 413],
		];
		for (const [body, headers, status] of cases) {
			const response = await post(body, headers);
			const text = await response.clone().text();
			expect(response.status, text).toBe(status);
			const parsed = await json(response);
			expect(parsed['error']).toMatchObject({ code: expect.any(String), message: expect.any(String) });
			expect(text).not.toMatch(/\n\s+at /);
		}

		const wrongMethod = await fetch(`${base}/renders`);
		expect(wrongMethod.status).toBe(405);
		expect(wrongMethod.headers.get('allow')).toBe('POST');
	});
});

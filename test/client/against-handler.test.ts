/**
 * The client against the real server half: createTaskHandler on node:http, with a real manager
 * running real tasks.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { RunNotFoundHttpError, waitForRun, watchRun, type Run } from '../../src/client/index.js';
import { createTaskHandler, type TaskHandler } from '../../src/http/index.js';
import type { BackgroundTaskManager, TaskContext } from '../../src/index.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { createManager, shutdownManagersAfterEach } from '../support/harness.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { trackClientTimers } from './sse-server.js';

failOnUnhandledErrorsAfterEach();
shutdownManagersAfterEach();

let manager: BackgroundTaskManager;
let handler: TaskHandler;
let server: Server;
let origin: string;
let gate: Deferred<void>;
let timers: ReturnType<typeof trackClientTimers>;
const lastEventIds: Array<string | undefined> = [];

beforeEach(async () => {
	manager = createManager({ progressThrottleMs: 0 }).manager;
	handler = createTaskHandler(manager);
	lastEventIds.length = 0;
	server = createServer((request, response) => {
		if (request.url?.endsWith('/events') === true) {
			const header = request.headers['last-event-id'];
			lastEventIds.push(typeof header === 'string' ? header : undefined);
		}
		handler(request, response);
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
	origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	gate = deferred();
	timers = trackClientTimers();
});

afterEach(async () => {
	timers.stop();
	handler.closeStreams();
	server.closeAllConnections();
	await new Promise<void>((resolve) => server.close(() => resolve()));
});

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		signal.throwIfAborted();
		signal.addEventListener('abort', () => reject(signal.reason), { once: true });
		promise.then(resolve, reject);
	});
}

/** Reports 10, 20, 30 %, waits for the gate, reports 90 % and returns — or fails when `fail` is set. */
function start(fail = false): string {
	return manager.startTask({ moduleId: 'video-render', parameters: { title: 'intro' } }, async ({ signal, reportProgress }: TaskContext) => {
		for (const percent of [10, 20, 30]) {
			reportProgress(percent, `at ${percent}`);
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
		await abortable(gate.promise, signal);
		reportProgress(90);
		if (fail) throw new Error('encoder crashed');
		return { url: '/videos/intro.mp4' };
	});
}

const summary = (runs: readonly Run[]): string[] => runs.map((run) => `${run.status} ${run.progress?.percent ?? '-'}`);

describe('the client against createTaskHandler', () => {
	it('waitForRun follows a run to completion', async () => {
		const runId = start();
		const seen: Array<number | undefined> = [];
		const waiting = waitForRun(`${origin}/tasks/${runId}`, {
			intervalMs: 10,
			maxIntervalMs: 40,
			onProgress: (run) => {
				seen.push(run.progress?.percent);
				if (run.progress?.percent === 30) gate.resolve();
			},
		});
		const run = await waiting;
		expect(run).toMatchObject({ runId, status: 'completed', result: { url: '/videos/intro.mp4' }, progress: { percent: 90 } });
		expect(seen.at(-1)).toBe(90);
		expect(seen).toContain(30);
		expect(await manager.getRun(runId)).toMatchObject({ status: 'completed' });
	});

	it('waitForRun resolves with a failed run (its error without stack) and with a run cancelled over HTTP', async () => {
		const failing = start(true);
		gate.resolve();
		const failed = await waitForRun(`${origin}/tasks/${failing}`, { intervalMs: 10 });
		expect(failed.status).toBe('failed');
		expect(failed.error).toMatchObject({ name: 'Error', message: 'encoder crashed' });
		expect(failed.error).not.toHaveProperty('stack');

		gate = deferred();
		const cancelled = start();
		const waiting = waitForRun(`${origin}/tasks/${cancelled}`, { intervalMs: 10 });
		const response = await fetch(`${origin}/tasks/${cancelled}/cancel`, { method: 'POST' });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ success: true, runId: cancelled, status: 'cancelled' });
		expect((await waiting).status).toBe('cancelled');
	});

	it('waitForRun and watchRun reject an unknown run with RunNotFoundHttpError', async () => {
		await expect(waitForRun(`${origin}/tasks/no-such-run`)).rejects.toMatchObject({
			name: 'RunNotFoundHttpError',
			status: 404,
			body: { error: { name: 'RunNotFoundError' } },
		});
		const error = await (async () => {
			for await (const _run of watchRun(`${origin}/tasks/no-such-run/events`)) {
				// Never reached.
			}
		})().catch((e: unknown) => e);
		expect(error).toBeInstanceOf(RunNotFoundHttpError);
	});

	it('watchRun yields the snapshot and every change until the run completes, and the server releases the stream', async () => {
		const runId = start();
		const runs: Run[] = [];
		for await (const run of watchRun(`${origin}/tasks/${runId}/events`)) {
			runs.push(run);
			if (run.progress?.percent === 30) gate.resolve();
		}
		expect(runs.at(-1)).toMatchObject({ status: 'completed', result: { url: '/videos/intro.mp4' } });
		expect(summary(runs)).toContain('running 30');
		// Each yielded state is newer than the one before it.
		for (let i = 1; i < runs.length; i++) expect(runs[i]!.updatedAt).toBeGreaterThanOrEqual(runs[i - 1]!.updatedAt);
		expect(new Set(runs.map((run) => JSON.stringify(run))).size).toBe(runs.length);
		await until(() => handler.openStreams === 0);
		expect(handler.activeTimers).toBe(0);
		expect(timers.active()).toBe(0);
	});

	it('watchRun reconnects with Last-Event-ID when the server ends its streams, and yields only newer state', async () => {
		const runId = start();
		const runs: Run[] = [];
		let closed = false;
		for await (const run of watchRun(`${origin}/tasks/${runId}/events`)) {
			runs.push(run);
			if (!closed && run.progress?.percent === 30) {
				closed = true;
				handler.closeStreams(); // as before a deploy: the client reconnects after the server's retry (2 s)
				setTimeout(() => gate.resolve(), 100); // the run ends while the client is away
			}
		}
		expect(lastEventIds).toHaveLength(2);
		expect(lastEventIds[0]).toBeUndefined();
		expect(lastEventIds[1]).toMatch(/^\d+$/);
		expect(summary(runs).at(-1)).toBe('completed 90');
		const afterReconnect = runs.slice(runs.findIndex((run) => run.progress?.percent === 30) + 1);
		expect(afterReconnect.length).toBeGreaterThan(0);
		expect(afterReconnect.every((run) => run.updatedAt > runs.find((r) => r.progress?.percent === 30)!.updatedAt)).toBe(true);
		expect(new Set(runs.map((run) => JSON.stringify(run))).size).toBe(runs.length);
		await until(() => handler.openStreams === 0);
	});

	it('watchRun stops and the server releases the stream when the consumer breaks out', async () => {
		const runId = start();
		for await (const run of watchRun(`${origin}/tasks/${runId}/events`)) {
			expect(run.runId).toBe(runId);
			break;
		}
		await until(() => handler.openStreams === 0);
		expect(handler.activeTimers).toBe(0);
		expect(timers.active()).toBe(0);
		gate.resolve();
	});
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

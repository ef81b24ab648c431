import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
	HttpError,
	InvalidResponseError,
	NetworkError,
	RunNotFoundHttpError,
	TimeoutError,
	ValidationError,
	waitForRun,
	type Run,
} from '../../src/client/index.js';
import type { RunStatus } from '../../src/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import {
	delay,
	gaps,
	trackClientTimers,
	makeRun,
	notFound,
	sendJson,
	startTestServer,
	type TestServer,
} from './sse-server.js';

failOnUnhandledErrorsAfterEach();

let server: TestServer;
let url: string;
let timers: ReturnType<typeof trackClientTimers>;

/** The client's timers once destroy hooks (queued by Node) have run. */
async function clientTimersAfterSettling(): Promise<number> {
	await delay(20);
	return timers.active();
}

beforeEach(async () => {
	server = await startTestServer();
	url = `${server.origin}/tasks/r1`;
	// One request first, so that fetch's own lazily created machinery is not counted as ours.
	await (await fetch(`${server.origin}/warm-up`)).text();
	server.requests.length = 0;
	timers = trackClientTimers();
});

afterEach(async () => {
	timers.stop();
	await server.close();
});

/** Answers the i-th request with `runs[i]`, the last one for every request after. */
function serveRuns(runs: readonly Run[]): void {
	server.handle((_request, response, index) => sendJson(response, 200, runs[Math.min(index, runs.length - 1)]));
}

const running = (percent: number): Run => makeRun('running', percent);

describe('waitForRun', () => {
	it.each<RunStatus>(['completed', 'failed', 'cancelled'])('resolves with the %s run and reports every move to onProgress', async (status) => {
		const final = makeRun(status, 100, status === 'failed' ? { error: { name: 'Error', message: 'boom' } } : {});
		serveRuns([makeRun('queued'), makeRun('queued'), running(10), running(10), running(60), final]);
		const seen: Array<[string, number | undefined]> = [];
		const run = await waitForRun(url, {
			intervalMs: 10,
			maxIntervalMs: 20,
			onProgress: (r) => seen.push([r.status, r.progress?.percent]),
		});
		expect(run).toEqual(final);
		expect(seen).toEqual([
			['queued', undefined],
			['running', 10],
			['running', 60],
			[status, 100],
		]);
		expect(server.requests).toHaveLength(6);
		expect(server.requests.every((request) => request.method === 'GET' && request.path === '/tasks/r1')).toBe(true);
		expect(server.requests[0]!.headers.accept).toBe('application/json');
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('doubles the interval while the run does not move, up to maxIntervalMs, with equal jitter', async () => {
		// Polls 0..6 see the same progress; poll 7 completes. Delays before polls 1..7: 100, 200, 400, 800, 800, 800, 800 (before jitter).
		serveRuns([...Array.from({ length: 7 }, () => running(10)), makeRun('completed', 100)]);
		await waitForRun(url, { intervalMs: 100, maxIntervalMs: 800 });
		const bases = [100, 200, 400, 800, 800, 800, 800];
		const measured = gaps(server.requests);
		expect(measured).toHaveLength(bases.length);
		measured.forEach((gap, i) => {
			const base = bases[i]!;
			// Equal jitter draws from [base / 2, base]; the upper margin is for a busy machine.
			expect(gap, `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(base / 2 - 2);
			expect(gap, `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeLessThanOrEqual(base + 150);
		});
	});

	it('resets the interval to intervalMs when the progress moves', async () => {
		serveRuns([running(10), running(10), running(10), running(10), running(20), running(20), makeRun('completed', 100)]);
		await waitForRun(url, { intervalMs: 60, maxIntervalMs: 10_000 });
		// 60, 120, 240, 480 → poll 4 moves → 60, 120.
		const bases = [60, 120, 240, 480, 60, 120];
		const measured = gaps(server.requests);
		expect(measured).toHaveLength(bases.length);
		measured.forEach((gap, i) => {
			expect(gap, `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(bases[i]! / 2 - 2);
			expect(gap, `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeLessThanOrEqual(bases[i]! + 150);
		});
	});

	it('retries transient 5xx answers and dropped connections on the same backoff, then goes on', async () => {
		server.handle((request, response, index) => {
			if (index === 1) sendJson(response, 503, { error: { name: 'Unavailable', message: 'try later' } });
			else if (index === 2) request.socket.destroy();
			else if (index === 3) sendJson(response, 500, { error: { name: 'InternalError', message: 'Internal server error' } });
			else sendJson(response, 200, index === 0 ? running(50) : index === 4 ? running(60) : makeRun('completed', 100));
		});
		const run = await waitForRun(url, { intervalMs: 40, maxIntervalMs: 1_000, retries: 3 });
		expect(run.status).toBe('completed');
		expect(server.requests).toHaveLength(6);
		// Failed polls do not reset the backoff: 40, 80, 160, 320 before jitter, then the run moved (index 4) → 40.
		const measured = gaps(server.requests);
		[40, 80, 160, 320, 40].forEach((base, i) => {
			expect(measured[i], `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(base / 2 - 2);
			expect(measured[i], `gap ${i + 1}: ${measured.map(Math.round).join(', ')}`).toBeLessThanOrEqual(base + 150);
		});
	});

	it('rejects with HttpError (status and parsed body) once the retries for 5xx are used up', async () => {
		const body = { error: { name: 'InternalError', message: 'Internal server error' } };
		server.handle((_request, response) => sendJson(response, 500, body));
		const error = await waitForRun(url, { intervalMs: 5, retries: 2 }).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(HttpError);
		expect(error).toMatchObject({ name: 'HttpError', code: 'ERR_HTTP', status: 500, body, url });
		expect((error as Error).message).toContain('InternalError: Internal server error');
		expect(server.requests).toHaveLength(3);
	});

	it('rejects with NetworkError once the retries for network failures are used up', async () => {
		server.handle((request) => {
			request.socket.destroy();
		});
		const error = await waitForRun(url, { intervalMs: 5, retries: 1 }).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(NetworkError);
		expect(error).toMatchObject({ code: 'ERR_NETWORK', url });
		expect((error as Error).cause).toBeInstanceOf(Error);
		expect(server.requests).toHaveLength(2);

		const closed = await startTestServer();
		const refusedUrl = `${closed.origin}/tasks/r1`;
		await closed.close();
		await expect(waitForRun(refusedUrl, { intervalMs: 5, retries: 0 })).rejects.toBeInstanceOf(NetworkError);
	});

	it('rejects with RunNotFoundHttpError on 404 and HttpError on other 4xx, without retrying', async () => {
		server.handle((_request, response) => notFound(response));
		const error = await waitForRun(url, { intervalMs: 5 }).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(RunNotFoundHttpError);
		expect(error).toBeInstanceOf(HttpError);
		expect(error).toMatchObject({
			code: 'ERR_RUN_NOT_FOUND',
			status: 404,
			body: { error: { name: 'RunNotFoundError', message: 'No run with id "r1"' } },
		});
		expect(server.requests).toHaveLength(1);

		server.handle((_request, response) => sendJson(response, 403, { error: { name: 'ForbiddenError', message: 'not yours' } }));
		await expect(waitForRun(url, { intervalMs: 5 })).rejects.toMatchObject({ name: 'HttpError', status: 403 });
		expect(server.requests).toHaveLength(2);
	});

	it('rejects with InvalidResponseError for a 2xx body that is not a run', async () => {
		server.handle((_request, response) => {
			response.writeHead(200, { 'content-type': 'text/html' });
			response.end('<html>login</html>');
		});
		await expect(waitForRun(url)).rejects.toBeInstanceOf(InvalidResponseError);
		server.handle((_request, response) => sendJson(response, 200, { runId: 'r1', status: 'sleeping' }));
		await expect(waitForRun(url)).rejects.toMatchObject({ code: 'ERR_INVALID_RESPONSE' });
	});

	it('rejects with TimeoutError after timeoutMs and leaves no timer behind', async () => {
		serveRuns([running(10)]);
		const started = performance.now();
		const error = await waitForRun(url, { intervalMs: 20, maxIntervalMs: 40, timeoutMs: 300 }).catch((e: unknown) => e);
		expect(performance.now() - started).toBeGreaterThanOrEqual(295);
		expect(error).toBeInstanceOf(TimeoutError);
		expect(error).toMatchObject({ code: 'ERR_TIMEOUT', timeoutMs: 300 });
		expect(await clientTimersAfterSettling()).toBe(0);
		const polls = server.requests.length;
		await delay(100);
		expect(server.requests).toHaveLength(polls); // polling stopped
	});

	it('times out during a slow response and aborts the request', async () => {
		server.handle(() => {
			// Answers never: only the client's timeout ends the request.
		});
		await expect(waitForRun(url, { timeoutMs: 150 })).rejects.toBeInstanceOf(TimeoutError);
		await server.requests[0]!.closed; // the client went away
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('rejects with the signal\'s reason on abort, at once, and leaves no timer behind', async () => {
		serveRuns([running(10)]);
		const controller = new AbortController();
		const waiting = waitForRun(url, { signal: controller.signal, intervalMs: 5_000, timeoutMs: 60_000, stallMs: 30_000, onStall: () => {} });
		await delay(100);
		expect(server.requests).toHaveLength(1); // waiting out the 5 s interval
		expect(timers.active()).toBe(2); // the interval and the timeout
		const reason = new Error('user left');
		const aborted = performance.now();
		controller.abort(reason);
		await expect(waiting).rejects.toBe(reason);
		expect(performance.now() - aborted).toBeLessThan(1_000);
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('rejects with an AbortError when the signal has no reason, and without a request when already aborted', async () => {
		serveRuns([running(10)]);
		const controller = new AbortController();
		const waiting = waitForRun(url, { signal: controller.signal, intervalMs: 1_000 });
		await delay(50);
		controller.abort();
		await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });

		server.requests.length = 0;
		const reason = new Error('already');
		await expect(waitForRun(url, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
		expect(server.requests).toHaveLength(0);
	});

	it('aborts a request in flight', async () => {
		server.handle(() => {
			// Never answers.
		});
		const controller = new AbortController();
		const waiting = waitForRun(url, { signal: controller.signal });
		await delay(50);
		controller.abort(new Error('stop'));
		await expect(waiting).rejects.toThrow('stop');
		await server.requests[0]!.closed;
	});

	it('calls onStall when due, once per stallMs without a move', async () => {
		let stalledUntilMs = Number.POSITIVE_INFINITY;
		const started = performance.now();
		server.handle((_request, response) => {
			const elapsed = performance.now() - started;
			sendJson(response, 200, elapsed < stalledUntilMs ? running(40) : elapsed < stalledUntilMs + 100 ? running(41) : makeRun('completed', 100));
		});
		const stalls: Array<{ at: number; stalledMs: number; percent: number | undefined }> = [];
		const run = await waitForRun(url, {
			intervalMs: 20,
			maxIntervalMs: 1_000,
			stallMs: 200,
			onStall: (r, stalledMs) => {
				stalls.push({ at: performance.now() - started, stalledMs, percent: r.progress?.percent });
				if (stalls.length === 2) stalledUntilMs = performance.now() - started;
			},
		});
		expect(run.status).toBe('completed');
		expect(stalls).toHaveLength(2);
		expect(stalls.map((s) => s.percent)).toEqual([40, 40]);
		// Reported when due, even though the backoff (20 → 1000 ms) would poll later.
		expect(stalls[0]!.stalledMs).toBeGreaterThanOrEqual(200);
		expect(stalls[0]!.stalledMs).toBeLessThan(200 + 150);
		expect(stalls[1]!.stalledMs).toBeGreaterThanOrEqual(400);
		expect(stalls[1]!.stalledMs).toBeLessThan(400 + 150);
	});

	it('does not call onStall while the progress keeps moving', async () => {
		const started = performance.now();
		server.handle((_request, response) => {
			const elapsed = performance.now() - started;
			// Moves every 60 ms for 600 ms: slower than the polls, faster than stallMs.
			sendJson(response, 200, elapsed < 600 ? running(Math.floor(elapsed / 60)) : makeRun('completed', 100));
		});
		const stalls: number[] = [];
		await waitForRun(url, { intervalMs: 20, maxIntervalMs: 80, stallMs: 150, onStall: (_r, ms) => stalls.push(ms) });
		expect(stalls).toEqual([]);
		expect(server.requests.length).toBeGreaterThan(5);
	});

	it('rejects with what onProgress throws, and stops', async () => {
		serveRuns([running(10), running(20)]);
		const thrown = new Error('render failed');
		await expect(
			waitForRun(url, {
				intervalMs: 10,
				timeoutMs: 10_000,
				onProgress: (run) => {
					if (run.progress?.percent === 20) throw thrown;
				},
			}),
		).rejects.toBe(thrown);
		expect(await clientTimersAfterSettling()).toBe(0);
		expect(server.requests).toHaveLength(2);
	});

	it('rejects bad options with ValidationError before any request', async () => {
		for (const options of [
			{ intervalMs: 0 },
			{ intervalMs: Number.NaN },
			{ intervalMs: 100, maxIntervalMs: 50 },
			{ timeoutMs: -1 },
			{ stallMs: 0 },
			{ retries: 1.5 },
		]) {
			await expect(waitForRun(url, options), JSON.stringify(options)).rejects.toBeInstanceOf(ValidationError);
		}
		expect(server.requests).toHaveLength(0);
	});

	it('sends extra headers and uses the given fetch', async () => {
		serveRuns([makeRun('completed', 100)]);
		let calls = 0;
		await waitForRun(new URL(url), {
			headers: { authorization: 'Bearer t' },
			fetch: (input, init) => {
				calls++;
				return fetch(input, init);
			},
		});
		expect(calls).toBe(1);
		expect(server.requests[0]!.headers.authorization).toBe('Bearer t');
	});
});

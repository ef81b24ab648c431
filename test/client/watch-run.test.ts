import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
	HttpError,
	InvalidResponseError,
	NetworkError,
	ReconnectLimitError,
	RunNotFoundHttpError,
	ValidationError,
	watchRun,
	type Run,
} from '../../src/client/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import {
	delay,
	makeRun,
	notFound,
	sendJson,
	sseEvent,
	startEventStream,
	startTestServer,
	trackClientTimers,
	type TestServer,
} from './sse-server.js';

failOnUnhandledErrorsAfterEach();

let server: TestServer;
let url: string;
let timers: ReturnType<typeof trackClientTimers>;

beforeEach(async () => {
	server = await startTestServer();
	url = `${server.origin}/tasks/r1/events`;
	timers = trackClientTimers();
});

afterEach(async () => {
	timers.stop();
	await server.close();
});

async function clientTimersAfterSettling(): Promise<number> {
	await delay(20);
	return timers.active();
}

async function collect(iterable: AsyncIterable<Run>): Promise<Run[]> {
	const runs: Run[] = [];
	for await (const run of iterable) runs.push(run);
	return runs;
}

const summary = (runs: readonly Run[]): string[] => runs.map((run) => `${run.status} ${run.progress?.percent ?? '-'}`);

describe('watchRun', () => {
	it('yields the run of every status and progress event, skips comments and other events, and ends after the terminal one', async () => {
		server.handle(async (_request, response) => {
			startEventStream(response);
			response.write(sseEvent(1, 'status', makeRun('queued')));
			response.write(': ping\n\n');
			response.write(sseEvent(2, 'status', makeRun('running', 0)));
			response.write('event: unrelated\ndata: {}\n\n');
			response.write(sseEvent(3, 'progress', makeRun('running', 50)));
			await delay(20);
			response.write(sseEvent(4, 'status', makeRun('completed', 100, { result: { url: 'x' } })));
			// The server keeps the connection open: the client ends by itself after the terminal event.
		});
		const runs = await collect(watchRun(url));
		expect(summary(runs)).toEqual(['queued -', 'running 0', 'running 50', 'completed 100']);
		expect(runs[3]!.result).toEqual({ url: 'x' });
		await server.requests[0]!.closed; // the client released the stream
		expect(server.requests).toHaveLength(1);
		expect(server.requests[0]!.headers.accept).toBe('text/event-stream');
		expect(server.requests[0]!.headers['last-event-id']).toBeUndefined();
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('reads events cut into chunks at every byte, multi-byte characters included', async () => {
		const stream =
			'retry: 2000\n\n' +
			sseEvent(1, 'status', makeRun('running', 10, { progress: { percent: 10, message: 'rendu — café 🎬' } })).replaceAll('\n', '\r\n') +
			sseEvent(2, 'status', makeRun('failed', undefined, { error: { name: 'Error', message: 'ünïcödé' } }));
		server.handle(async (_request, response) => {
			startEventStream(response, null);
			const bytes = Buffer.from(stream, 'utf8');
			for (let i = 0; i < bytes.length; i++) {
				response.write(bytes.subarray(i, i + 1));
				if (i % 40 === 0) await delay(1); // let some bytes travel alone
			}
		});
		const runs = await collect(watchRun(url));
		expect(runs.map((run) => run.progress?.message ?? run.error?.message)).toEqual(['rendu — café 🎬', 'ünïcödé']);
		expect(runs[1]!.status).toBe('failed');
	});

	it('reconnects with Last-Event-ID after the server drops the connection, after the server\'s retry, without repeating an event', async () => {
		const lastEventIds: Array<string | undefined> = [];
		server.handle((request, response, index) => {
			const header = request.headers['last-event-id'];
			lastEventIds.push(typeof header === 'string' ? header : undefined);
			startEventStream(response, 150);
			if (index === 0) {
				response.write(sseEvent(1, 'status', makeRun('running', 0)));
				response.write(sseEvent(2, 'progress', makeRun('running', 20)));
				// Half an event, then the connection drops: the half must not be yielded.
				response.write(sseEvent(3, 'progress', makeRun('running', 40)).slice(0, 30));
				setTimeout(() => response.socket?.destroy(), 20);
			} else if (index === 1) {
				// Resumes after id 2: only newer state; then ends the response cleanly, too early.
				response.write(sseEvent(3, 'progress', makeRun('running', 40)));
				response.write(sseEvent(4, 'progress', makeRun('running', 60)));
				response.end();
			} else {
				response.write(sseEvent(5, 'status', makeRun('completed', 100)));
				response.end();
			}
		});
		const runs = await collect(watchRun(url, { retryMs: 10_000 }));
		expect(summary(runs)).toEqual(['running 0', 'running 20', 'running 40', 'running 60', 'completed 100']);
		expect(lastEventIds).toEqual([undefined, '2', '4']);
		// The server's `retry: 150` replaced retryMs; each reconnection came after at least that.
		const [first, second, third] = server.requests;
		expect(second!.at - first!.at).toBeGreaterThanOrEqual(150 + 20 - 2);
		expect(third!.at - second!.at).toBeGreaterThanOrEqual(150 - 2);
		expect(third!.at - first!.at).toBeLessThan(5_000); // not retryMs
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('sends lastEventId on the first request', async () => {
		server.handle((_request, response) => {
			startEventStream(response);
			response.end(sseEvent(8, 'status', makeRun('cancelled', 30)));
		});
		const runs = await collect(watchRun(url, { lastEventId: '7', headers: { authorization: 'Bearer t' } }));
		expect(summary(runs)).toEqual(['cancelled 30']);
		expect(server.requests[0]!.headers['last-event-id']).toBe('7');
		expect(server.requests[0]!.headers.authorization).toBe('Bearer t');
	});

	it('retries 503s and refused streams, doubling the wait, and throws ReconnectLimitError after maxRetries failures in a row', async () => {
		server.handle((request, response, index) => {
			if (index % 2 === 0) sendJson(response, 503, { error: { name: 'Unavailable', message: 'busy' } });
			else request.socket.destroy();
		});
		const error = await collect(watchRun(url, { retryMs: 40, maxRetries: 3 })).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(ReconnectLimitError);
		expect(error).toMatchObject({ code: 'ERR_RECONNECT_LIMIT', attempts: 4, lastEventId: undefined, url });
		expect((error as Error).cause).toBeInstanceOf(NetworkError);
		expect(server.requests).toHaveLength(4);
		const gaps = server.requests.slice(1).map((request, i) => request.at - server.requests[i]!.at);
		[40, 80, 160].forEach((wait, i) => {
			expect(gaps[i], gaps.map(Math.round).join(', ')).toBeGreaterThanOrEqual(wait - 2);
			expect(gaps[i], gaps.map(Math.round).join(', ')).toBeLessThan(wait + 250);
		});
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('counts failures in a row only: a connection that delivered an event resets the count', async () => {
		server.handle((_request, response, index) => {
			if (index < 4) {
				// Each connection delivers one event and drops: never two failures in a row.
				startEventStream(response, 5);
				response.end(sseEvent(index + 1, 'progress', makeRun('running', index * 10)));
			} else {
				startEventStream(response, 5);
				response.end(sseEvent(index + 1, 'status', makeRun('completed', 100)));
			}
		});
		const runs = await collect(watchRun(url, { maxRetries: 1 }));
		expect(summary(runs)).toEqual(['running 0', 'running 10', 'running 20', 'running 30', 'completed 100']);
		expect(server.requests.map((request) => request.headers['last-event-id'])).toEqual([undefined, '1', '2', '3', '4']);
	});

	it('throws RunNotFoundHttpError on 404 and HttpError on 403, without retrying', async () => {
		server.handle((_request, response) => notFound(response));
		const error = await collect(watchRun(url, { retryMs: 1 })).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(RunNotFoundHttpError);
		expect(error).toMatchObject({ status: 404, body: { error: { name: 'RunNotFoundError' } } });
		server.handle((_request, response) => sendJson(response, 403, { error: { name: 'ForbiddenError', message: 'no' } }));
		await expect(collect(watchRun(url, { retryMs: 1 }))).rejects.toSatisfy(
			(e) => e instanceof HttpError && !(e instanceof RunNotFoundHttpError) && e.status === 403,
		);
		expect(server.requests).toHaveLength(2);
	});

	it('throws InvalidResponseError for a response that is not an event stream, or an event that is not a run', async () => {
		server.handle((_request, response) => sendJson(response, 200, makeRun('running', 1)));
		await expect(collect(watchRun(url))).rejects.toBeInstanceOf(InvalidResponseError);
		server.handle((_request, response) => {
			startEventStream(response);
			response.write('event: status\ndata: {not json\n\n');
		});
		await expect(collect(watchRun(url))).rejects.toMatchObject({ code: 'ERR_INVALID_RESPONSE' });
		await server.requests[1]!.closed;
	});

	it('releases the stream when the consumer breaks out of the loop', async () => {
		server.handle((_request, response) => {
			startEventStream(response);
			response.write(sseEvent(1, 'status', makeRun('running', 0)));
			response.write(sseEvent(2, 'progress', makeRun('running', 1)));
			// Then nothing: the stream stays open until the client leaves.
		});
		const runs: Run[] = [];
		for await (const run of watchRun(url)) {
			runs.push(run);
			break;
		}
		expect(summary(runs)).toEqual(['running 0']);
		await server.requests[0]!.closed;
		await delay(100);
		expect(server.requests).toHaveLength(1); // no reconnection
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('rejects the pending next() with the signal\'s reason on abort, while reading and while waiting to reconnect', async () => {
		server.handle((_request, response, index) => {
			startEventStream(response, 10_000);
			response.write(sseEvent(1, 'status', makeRun('running', 0)));
			if (index === 0) return; // stays open
			response.end(); // drops: the client waits 10 s to reconnect
		});
		const reading = new AbortController();
		const iterator = watchRun(url, { signal: reading.signal })[Symbol.asyncIterator]();
		expect((await iterator.next()).value?.status).toBe('running');
		const pending = iterator.next();
		await delay(30);
		const reason = new Error('page closed');
		reading.abort(reason);
		await expect(pending).rejects.toBe(reason);
		await server.requests[0]!.closed;
		expect(await iterator.next()).toEqual({ done: true, value: undefined });

		const waiting = new AbortController();
		const second = watchRun(url, { signal: waiting.signal })[Symbol.asyncIterator]();
		expect((await second.next()).value?.status).toBe('running');
		const next = second.next();
		await delay(50);
		expect(timers.active()).toBe(1); // the 10 s reconnection wait
		const aborted = performance.now();
		waiting.abort();
		await expect(next).rejects.toMatchObject({ name: 'AbortError' });
		expect(performance.now() - aborted).toBeLessThan(1_000);
		expect(server.requests).toHaveLength(2);
		expect(await clientTimersAfterSettling()).toBe(0);
	});

	it('throws at once for an already aborted signal and bad options, without a request', async () => {
		const reason = new Error('gone');
		await expect(collect(watchRun(url, { signal: AbortSignal.abort(reason) }))).rejects.toBe(reason);
		await expect(collect(watchRun(url, { maxRetries: -1 }))).rejects.toBeInstanceOf(ValidationError);
		await expect(collect(watchRun(url, { lastEventId: 'a\nb' }))).rejects.toBeInstanceOf(ValidationError);
		expect(server.requests).toHaveLength(0);
	});
});

/**
 * A small, scriptable HTTP server on 127.0.0.1 that speaks runledger/http's wire format for
 * one run at a time, for the client tests: each test gives the handler, the server records
 * every request (path, headers, arrival time) and can misbehave on purpose.
 */
import { createHook } from 'node:async_hooks';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Run, RunStatus } from '../../src/index.js';

export interface RecordedRequest {
	readonly method: string;
	readonly path: string;
	readonly headers: IncomingMessage['headers'];
	/** `performance.now()` when the request arrived. */
	readonly at: number;
	/** Resolves when the client side of this request's connection went away or the response ended. */
	readonly closed: Promise<void>;
}

export type TestHandler = (request: IncomingMessage, response: ServerResponse, index: number) => void | Promise<void>;

export interface TestServer {
	readonly origin: string;
	readonly requests: RecordedRequest[];
	/** The handler for the next requests. */
	handle(handler: TestHandler): void;
	close(): Promise<void>;
}

export async function startTestServer(handler: TestHandler = (_request, response) => sendJson(response, 404, {})): Promise<TestServer> {
	let current = handler;
	const requests: RecordedRequest[] = [];
	const server: Server = createServer((request, response) => {
		const closed = new Promise<void>((resolve) => response.once('close', () => resolve()));
		const index = requests.length;
		requests.push({ method: request.method ?? 'GET', path: request.url ?? '/', headers: request.headers, at: performance.now(), closed });
		Promise.resolve(current(request, response, index)).catch((error: unknown) => {
			console.error('test server handler failed', error);
			response.destroy();
		});
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve());
	});
	const { port } = server.address() as AddressInfo;
	return {
		origin: `http://127.0.0.1:${port}`,
		requests,
		handle(next) {
			current = next;
		},
		close() {
			server.closeAllConnections();
			return new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
	const json = JSON.stringify(body);
	response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
	response.end(json);
}

export function notFound(response: ServerResponse, runId = 'r1'): void {
	sendJson(response, 404, { error: { name: 'RunNotFoundError', message: `No run with id "${runId}"` } });
}

let created = 1_700_000_000_000;

/** A run as runledger/http sends it. */
export function makeRun(status: RunStatus, percent?: number, extra: Partial<Run> = {}): Run {
	created += 1;
	return {
		runId: 'r1',
		moduleId: 'video-render',
		status,
		priority: 'normal',
		parameters: { title: 'intro' },
		createdAt: 1_700_000_000_000,
		updatedAt: created,
		...(percent === undefined ? {} : { progress: { percent, message: `at ${percent} %` } }),
		...extra,
	};
}

/** Starts an event stream response (status 200 and the headers runledger/http sends); `retry` is written first unless null. */
export function startEventStream(response: ServerResponse, retry: number | null = 2000): void {
	response.writeHead(200, {
		'content-type': 'text/event-stream; charset=utf-8',
		'cache-control': 'no-cache, no-transform',
		connection: 'keep-alive',
		'x-accel-buffering': 'no',
	});
	if (retry !== null) response.write(`retry: ${retry}\n\n`);
	else response.flushHeaders();
}

/** One event in the wire format. */
export function sseEvent(id: number, type: 'status' | 'progress', run: Run): string {
	return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(run)}\n\n`;
}

export function delay(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The gaps in ms between consecutive recorded requests. */
export function gaps(requests: readonly RecordedRequest[]): number[] {
	return requests.slice(1).map((request, i) => request.at - requests[i]!.at);
}

/** How many timers are active in this process. */
export function activeTimers(): number {
	return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

/**
 * Tracks the timers created by code under src/client/ (by the stack at creation) until they
 * fire or are cleared: an exact count, unlike the process-wide one, which includes the test
 * runner's own timers.
 */
export function trackClientTimers(): { active(): number; stop(): void } {
	const live = new Set<number>();
	const hook = createHook({
		init(asyncId, type) {
			if (type !== 'Timeout') return;
			const holder: { stack?: string } = {};
			Error.captureStackTrace(holder);
			if (holder.stack?.includes('/src/client/') === true) live.add(asyncId);
		},
		destroy(asyncId) {
			live.delete(asyncId);
		},
	});
	hook.enable();
	return {
		active: () => live.size,
		stop: () => hook.disable(),
	};
}

/**
 * Submit-and-poll over HTTP with node:http and no framework.
 *
 *   PORT=3000 npx tsx examples/http-endpoint.ts     (PORT unset or 0: a free port is chosen and printed)
 *
 *   curl -si -X POST localhost:3000/renders -H 'content-type: application/json' -d '{"template":"intro","frames":120}'
 *     → 202 { "runId": "…", "statusUrl": "/runs/…" }
 *   curl -s localhost:3000/runs/<runId>             → 200 the run (status, progress, result, error) | 404
 *   curl -s localhost:3000/runs?status=running      → 200 { runs, nextCursor? }
 *   curl -si -X DELETE localhost:3000/runs/<runId>  → 200 cancelled | 404 unknown | 409 already finished
 *
 * Every error is JSON `{ "error": { "code", "message" } }`; stack traces go to the server log only.
 * SIGTERM / SIGINT close the server and shut the manager down gracefully.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
	BackgroundTaskManager,
	MemoryRunRegistry,
	QueueFullError,
	ShutdownError,
	ValidationError,
	isRunStatus,
} from '../src/index.js';
import type { Run, RunQuery, RunStatus } from '../src/index.js';

const MAX_BODY_BYTES = 16 * 1024;
const MS_PER_FRAME = 50;

const registry = new MemoryRunRegistry({ maxRuns: 1_000 });
const manager = new BackgroundTaskManager(registry, {
	concurrency: 4,
	concurrencyByModule: { 'video-render': 2 },
	maxQueued: 100,
	defaultTimeoutMs: 5 * 60_000,
	retention: { maxAgeMs: 60 * 60_000 },
});
manager.on('error', (error) => console.error(`[runledger] ${error.code}: ${error.message}`));

// ---------------------------------------------------------------------------------------------
// The task: a pretend render that honours cancellation.
// ---------------------------------------------------------------------------------------------

interface RenderRequest {
	readonly template: string;
	readonly frames: number;
	readonly itemId?: string;
	readonly priority?: 'critical' | 'high' | 'normal' | 'low';
}

function startRender(request: RenderRequest): string {
	return manager.startTask(
		{
			moduleId: 'video-render',
			moduleName: 'Video render',
			parameters: { template: request.template, frames: request.frames },
			...(request.itemId === undefined ? {} : { itemId: request.itemId }),
			...(request.priority === undefined ? {} : { priority: request.priority }),
		},
		async ({ runId, signal, parameters, reportProgress }) => {
			const { template, frames } = parameters;
			for (let frame = 1; frame <= frames; frame++) {
				await delay(MS_PER_FRAME, undefined, { signal });
				reportProgress(Math.floor((frame * 100) / frames), `frame ${frame}/${frames}`);
			}

			return { url: `https://cdn.example.com/renders/${encodeURIComponent(runId)}/${template}.mp4`, frames };
		},
	);
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing.
// ---------------------------------------------------------------------------------------------

/** An error that becomes a JSON response as it is. */
class HttpError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly headers: Readonly<Record<string, string>> = {},
	) {
		super(message);
	}
}

function send(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
	const json = JSON.stringify(body);
	response.writeHead(status, {
		'content-type': 'application/json; charset=utf-8',
		'content-length': Buffer.byteLength(json),
		'cache-control': 'no-store',
		...headers,
	});
	response.end(json);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
	const type = request.headers['content-type'] ?? '';
	if (!/^application\/json\b/i.test(type)) {
		throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
	}

	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of request) {
		size += (chunk as Buffer).length;
		if (size > MAX_BODY_BYTES) throw new HttpError(413, 'BODY_TOO_LARGE', `The body may be at most ${MAX_BODY_BYTES} bytes`);
		chunks.push(chunk as Buffer);
	}

	try {
		return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
	} catch {
		throw new HttpError(400, 'INVALID_JSON', 'The body is not valid JSON');
	}
}

/** A run as clients see it: the stored error without its stack, which names server files. */
function publicRun(run: Run): Run {
	if (run.error?.stack === undefined) return run;
	const { stack: _stack, ...error } = run.error;
	return { ...run, error };
}

const invalid = (message: string): HttpError => new HttpError(400, 'INVALID_REQUEST', message);

function parseRenderRequest(body: unknown): RenderRequest {
	if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The body must be a JSON object');
	const { template, frames = 60, itemId, priority, ...rest } = body as Record<string, unknown>;

	const unknown = Object.keys(rest);
	if (unknown.length > 0) throw invalid(`Unknown field(s): ${unknown.join(', ')}`);
	if (typeof template !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/i.test(template)) {
		throw invalid('`template` must be 1 to 64 letters, digits or dashes');
	}
	if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 1 || frames > 10_000) {
		throw invalid('`frames` must be an integer from 1 to 10000');
	}
	if (itemId !== undefined && (typeof itemId !== 'string' || itemId.length === 0 || itemId.length > 128)) {
		throw invalid('`itemId` must be a string of 1 to 128 characters');
	}
	if (priority !== undefined && priority !== 'critical' && priority !== 'high' && priority !== 'normal' && priority !== 'low') {
		throw invalid('`priority` must be one of critical, high, normal, low');
	}

	return {
		template,
		frames,
		...(itemId === undefined ? {} : { itemId }),
		...(priority === undefined ? {} : { priority }),
	};
}

function parseListQuery(params: URLSearchParams): RunQuery {
	const query: { -readonly [K in keyof RunQuery]: RunQuery[K] } = {};
	const statuses = params.getAll('status').flatMap((value) => value.split(','));
	if (statuses.length > 0) {
		const valid: RunStatus[] = [];
		for (const status of statuses) {
			if (!isRunStatus(status)) throw invalid(`Unknown status "${status}"`);
			valid.push(status);
		}
		query.status = valid;
	}

	const limit = params.get('limit');
	if (limit !== null) {
		const value = Number(limit);
		if (!Number.isInteger(value) || value < 1 || value > 100) throw invalid('`limit` must be an integer from 1 to 100');
		query.limit = value;
	}

	for (const key of ['moduleId', 'itemId', 'cursor'] as const) {
		const value = params.get(key);
		if (value !== null) query[key] = value;
	}

	return query;
}

function runIdFrom(segment: string): string {
	try {
		return decodeURIComponent(segment);
	} catch {
		throw new HttpError(400, 'INVALID_RUN_ID', 'The run id is not validly encoded');
	}
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
	const url = new URL(request.url ?? '/', 'http://localhost');
	const method = request.method ?? 'GET';

	if (url.pathname === '/renders') {
		if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed here`, { allow: 'POST' });
		const render = parseRenderRequest(await readJson(request));
		const runId = startRender(render);
		const statusUrl = `/runs/${encodeURIComponent(runId)}`;
		send(response, 202, { runId, statusUrl }, { location: statusUrl });
		return;
	}

	if (url.pathname === '/runs') {
		if (method !== 'GET') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed here`, { allow: 'GET' });
		const page = await manager.listRuns(parseListQuery(url.searchParams));
		send(response, 200, { ...page, runs: page.runs.map(publicRun) });
		return;
	}

	const match = /^\/runs\/([^/]+)$/.exec(url.pathname);
	if (match !== null) {
		const runId = runIdFrom(match[1]!);
		if (method === 'GET') {
			const run = await manager.getRun(runId);
			if (run === undefined) throw new HttpError(404, 'RUN_NOT_FOUND', `No run with id "${runId}"`);
			send(response, 200, publicRun(run));
			return;
		}

		if (method === 'DELETE') {
			if (await manager.cancelTask(runId, 'cancelled over HTTP')) {
				send(response, 200, { runId, status: 'cancelled' });
				return;
			}

			const run = await manager.getRun(runId);
			if (run === undefined) throw new HttpError(404, 'RUN_NOT_FOUND', `No run with id "${runId}"`);
			// Already finished — or active but not cancellable here (owned by another instance).
			throw new HttpError(409, 'RUN_NOT_CANCELLABLE', `Run "${runId}" is ${run.status}: only queued or running runs can be cancelled`);
		}

		throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed here`, { allow: 'GET, DELETE' });
	}

	throw new HttpError(404, 'NOT_FOUND', `No route for ${method} ${url.pathname}`);
}

const server = createServer((request, response) => {
	handle(request, response).catch((error: unknown) => {
		if (response.headersSent) {
			response.destroy();
			return;
		}

		if (error instanceof HttpError) {
			send(response, error.status, { error: { code: error.code, message: error.message } }, error.headers);
		} else if (error instanceof ValidationError) {
			send(response, 400, { error: { code: 'INVALID_REQUEST', message: error.message } });
		} else if (error instanceof QueueFullError) {
			send(response, 503, { error: { code: 'QUEUE_FULL', message: 'Too many renders are waiting; retry later' } }, { 'retry-after': '5' });
		} else if (error instanceof ShutdownError) {
			send(response, 503, { error: { code: 'SHUTTING_DOWN', message: 'The server is shutting down' } }, { connection: 'close' });
		} else {
			// Log the details; never send them.
			console.error('unhandled error', error);
			send(response, 500, { error: { code: 'INTERNAL', message: 'Internal server error' } });
		}
	});
});

// ---------------------------------------------------------------------------------------------
// Start and stop.
// ---------------------------------------------------------------------------------------------

const port = Number(process.env['PORT'] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
	console.error(`PORT must be an integer from 0 to 65535, got "${process.env['PORT']}"`);
	process.exit(2);
}

server.listen(port, '127.0.0.1', () => {
	const { port: chosen } = server.address() as AddressInfo;
	console.log(`listening on http://127.0.0.1:${chosen}`);
});

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
	if (stopping) return;
	stopping = true;
	console.log(`${signal}: closing the server and shutting down the task manager`);
	server.close();
	server.closeIdleConnections();
	const report = await manager.shutdown({ graceMs: 5_000, abortGraceMs: 1_000 });
	console.log(
		`shutdown: ${report.finished.length} finished, ${report.cancelled.length} cancelled, ` +
			`${report.unsettled.length} unsettled, ${report.unflushed.length} unflushed`,
	);
	process.exit(0);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, (received) => void stop(received));

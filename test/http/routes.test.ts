/**
 * runledger/http JSON routes against real servers — node:http, Express and Fastify — on
 * 127.0.0.1 with real fetch: every route, every error code and body, authorization, 500s.
 */
import { afterEach, describe, expect, it } from 'vitest';

import {
	BackgroundTaskManager,
	MemoryRunRegistry,
	type Run,
	type RunPage,
	type RunQuery,
} from '../../src/index.js';
import { type TaskHandlerOptions, createTaskHandler } from '../../src/http/index.js';
import { until } from '../support/deferred.js';
import { createManager, shutdownManagersAfterEach } from '../support/harness.js';
import { RecordingLogger } from '../support/logger.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { controlledTask } from '../support/tasks.js';
import { MOUNTINGS, type Mounting, closeServers, request, startServer } from './support.js';

shutdownManagersAfterEach();
failOnUnhandledErrorsAfterEach();
afterEach(closeServers);

const JSON_TYPE = 'application/json; charset=utf-8';

interface ErrorBody {
	error: { name: string; message: string; field?: string; status?: string };
}

/** A manager on a fresh registry with a server in front of it. */
async function setup(mounting: Mounting, options?: TaskHandlerOptions, registry = new MemoryRunRegistry()) {
	const { manager } = createManager({ progressThrottleMs: 0 }, registry);
	const server = await startServer(mounting, manager, options);
	return { manager, registry, server, base: `${server.origin}${options?.basePath ?? '/tasks'}` };
}

/** Starts a run that completes with `result` and waits until it is stored. */
async function finishedRun(manager: BackgroundTaskManager, input: { moduleId?: string; itemId?: string; metadata?: Record<string, unknown> } = {}, result: unknown = { ok: true }): Promise<Run> {
	const runId = manager.startTask({ moduleId: input.moduleId ?? 'render', ...(input.itemId === undefined ? {} : { itemId: input.itemId }), ...(input.metadata === undefined ? {} : { metadata: input.metadata }) }, async () => result);
	return manager.waitForRun(runId);
}

/** A registry whose reads fail with a message that must never reach a client. */
class BrokenRegistry extends MemoryRunRegistry {
	failList = false;
	failGet = false;

	override async listRuns(query?: RunQuery): Promise<RunPage> {
		if (this.failList) throw new Error('ECONNREFUSED /var/secret/registry.sock');
		return super.listRuns(query);
	}

	override async getRun(runId: string): Promise<Run | undefined> {
		if (this.failGet) throw new Error('ECONNREFUSED /var/secret/registry.sock');
		return super.getRun(runId);
	}
}

describe.each(MOUNTINGS)('runledger/http routes on %s', (mounting) => {
	describe('GET {base}', () => {
		it('lists runs newest first with JSON headers, and pages with nextCursor', async () => {
			const { manager, base } = await setup(mounting);
			const ids: string[] = [];
			for (let index = 0; index < 5; index++) ids.push((await finishedRun(manager)).runId);

			const all = await request<{ runs: Run[]; nextCursor?: string }>(base);
			expect(all.status).toBe(200);
			expect(all.headers.get('content-type')).toBe(JSON_TYPE);
			expect(all.headers.get('cache-control')).toBe('no-store');
			expect(all.body.runs.map((run) => run.runId)).toEqual([...ids].reverse());
			expect(all.body).not.toHaveProperty('nextCursor');

			const seen: string[] = [];
			let cursor: string | undefined;
			let pages = 0;
			do {
				const page = await request<{ runs: Run[]; nextCursor?: string }>(`${base}?limit=2${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
				expect(page.status).toBe(200);
				expect(page.body.runs.length).toBeLessThanOrEqual(2);
				seen.push(...page.body.runs.map((run) => run.runId));
				cursor = page.body.nextCursor;
				pages++;
			} while (cursor !== undefined);
			expect(seen).toEqual([...ids].reverse());
			expect(pages).toBe(3);

			// A trailing slash is the same route.
			expect((await request(`${base}/`)).status).toBe(200);
		});

		it('filters by status (repeatable), moduleId and itemId', async () => {
			const { manager, base } = await setup(mounting);
			const done = await finishedRun(manager, { moduleId: 'video', itemId: 'chat-1' });
			const other = await finishedRun(manager, { moduleId: 'image', itemId: 'chat-2' });
			const task = controlledTask();
			const running = manager.startTask({ moduleId: 'video', itemId: 'chat-1' }, task.fn);
			await task.called;
			await manager.flush();

			const ids = async (query: string): Promise<string[]> => {
				const response = await request<{ runs: Run[] }>(`${base}?${query}`);
				expect(response.status).toBe(200);
				return response.body.runs.map((run) => run.runId);
			};

			expect(await ids('status=running')).toEqual([running]);
			expect(await ids('status=running&status=completed')).toEqual([running, other.runId, done.runId]);
			expect(await ids('status=failed')).toEqual([]);
			expect(await ids('moduleId=video')).toEqual([running, done.runId]);
			expect(await ids('itemId=chat-2')).toEqual([other.runId]);
			expect(await ids('moduleId=video&status=completed')).toEqual([done.runId]);
			expect(await ids('moduleId=nothing')).toEqual([]);
			task.done.resolve(undefined);
		});

		it('caps pages at maxListLimit, which is also the default page size', async () => {
			const { manager, base } = await setup(mounting, { maxListLimit: 3 });
			for (let index = 0; index < 4; index++) await finishedRun(manager);
			const page = await request<{ runs: Run[]; nextCursor?: string }>(base);
			expect(page.body.runs).toHaveLength(3);
			expect(typeof page.body.nextCursor).toBe('string');
			expect((await request(`${base}?limit=3`)).status).toBe(200);
			const tooMany = await request<ErrorBody>(`${base}?limit=4`);
			expect(tooMany.status).toBe(400);
			expect(tooMany.body).toEqual({ error: { name: 'ValidationError', field: 'limit', message: 'Expected `limit` to be an integer from 1 to 3, got string "4"' } });
		});

		it.each([
			['status=bogus', 'status'],
			['status=running&status=', 'status'],
			['limit=0', 'limit'],
			['limit=101', 'limit'],
			['limit=1.5', 'limit'],
			['limit=abc', 'limit'],
			['limit=', 'limit'],
			['limit=01', 'limit'],
			['limit=1&limit=2', 'limit'],
			['moduleId=', 'moduleId'],
			['itemId=%01', 'itemId'],
			['cursor=not-a-cursor', 'cursor'],
			['cursor=', 'cursor'],
			['ownerId=x', 'ownerId'],
			['foo=1', 'foo'],
		])('400 for %s naming the field', async (query, field) => {
			const { base } = await setup(mounting);
			const response = await request<ErrorBody>(`${base}?${query}`);
			expect(response.status).toBe(400);
			expect(response.headers.get('content-type')).toBe(JSON_TYPE);
			expect(response.body.error).toMatchObject({ name: 'ValidationError', field });
			expect(response.body.error.message).toMatch(new RegExp(`^Expected \`${field}\` to be `, 'u'));
			expect(Object.keys(response.body.error).sort()).toEqual(['field', 'message', 'name']);
		});

		it('HEAD answers like GET without a body', async () => {
			const { manager, base } = await setup(mounting);
			await finishedRun(manager);
			const get = await request(base);
			const head = await fetch(base, { method: 'HEAD' });
			expect(head.status).toBe(200);
			expect(head.headers.get('content-type')).toBe(JSON_TYPE);
			expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(get.text)));
			expect(await head.text()).toBe('');
		});
	});

	describe('GET {base}/:runId', () => {
		it('answers the run, or 404 RunNotFoundError', async () => {
			const { manager, base } = await setup(mounting);
			const { runId } = await finishedRun(manager, {}, { url: 'https://cdn.example.com/a.mp4' });
			const run = (await manager.getRun(runId))!;
			const found = await request<Run>(`${base}/${run.runId}`);
			expect(found.status).toBe(200);
			expect(found.headers.get('content-type')).toBe(JSON_TYPE);
			expect(found.headers.get('cache-control')).toBe('no-store');
			expect(found.body).toEqual(run);

			const missing = await request<ErrorBody>(`${base}/nope`);
			expect(missing.status).toBe(404);
			expect(missing.body).toEqual({ error: { name: 'RunNotFoundError', message: 'No run with id "nope"' } });
		});

		it('answers a running run as this manager sees it', async () => {
			const { manager, base } = await setup(mounting);
			const task = controlledTask();
			const runId = manager.startTask({ moduleId: 'render' }, task.fn);
			const context = await task.called;
			context.reportProgress(42, 'frame 42');
			const response = await request<Run>(`${base}/${runId}`);
			expect(response.body).toMatchObject({ runId, status: 'running', progress: { percent: 42, message: 'frame 42' } });
			task.done.resolve(undefined);
		});

		it('decodes ids: spaces, slashes and unicode', async () => {
			const { manager, base } = await setup(mounting);
			for (const runId of ['a b', 'a/b', 'ünï✓', "x'y\"z"]) {
				manager.startTask({ runId, moduleId: 'render' }, async () => 1);
				await manager.waitForRun(runId);
				const response = await request<Run>(`${base}/${encodeURIComponent(runId)}`);
				expect(response.status).toBe(200);
				expect(response.body.runId).toBe(runId);
			}
		});

		it.each([
			['%01abc', 'a control character'],
			['%7F', 'DEL'],
			['x'.repeat(257), '257 characters'],
			['%E0%A4%A', 'malformed percent-encoding'],
		])('400 for the id %s (%s)', async (segment) => {
			const { base } = await setup(mounting);
			// Fastify's router refuses a malformed percent-encoding itself, with a 400 of its own.
			const ours = !(mounting === 'fastify' && segment.startsWith('%E0'));
			for (const [url, method] of [[`${base}/${segment}`, 'GET'], [`${base}/${segment}/events`, 'GET'], [`${base}/${segment}/cancel`, 'POST'], [`${base}/${segment}`, 'DELETE']] as const) {
				const response = await request<ErrorBody>(url, { method });
				expect(response.status).toBe(400);
				if (ours) expect(response.body.error).toMatchObject({ name: 'ValidationError', field: 'runId' });
			}
		});

		it('400 for an empty id, and for query parameters', async () => {
			const { manager, base } = await setup(mounting);
			const run = await finishedRun(manager);
			const empty = await request<ErrorBody>(`${base}//events`);
			expect(empty.status).toBe(400);
			expect(empty.body.error.field).toBe('runId');
			const query = await request<ErrorBody>(`${base}/${run.runId}?verbose=1`);
			expect(query.status).toBe(400);
			expect(query.body.error).toMatchObject({ name: 'ValidationError', field: 'verbose' });
		});

		it('never sends the stack of a failed run', async () => {
			const { manager, base } = await setup(mounting);
			const runId = manager.startTask({ moduleId: 'render' }, async () => {
				throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
			});
			const stored = await manager.waitForRun(runId);
			expect(stored.error?.stack).toContain('routes.test.ts');

			const response = await request<Run>(`${base}/${runId}`);
			expect(response.body.error).toEqual({ name: 'Error', message: 'disk full', code: 'ENOSPC' });
			expect(response.text).not.toContain('routes.test.ts');
			const list = await request(`${base}`);
			expect(list.text).toContain('disk full');
			expect(list.text).not.toContain('routes.test.ts');
		});

		it('HEAD answers like GET without a body', async () => {
			const { manager, base } = await setup(mounting);
			const run = await finishedRun(manager);
			const head = await fetch(`${base}/${run.runId}`, { method: 'HEAD' });
			expect(head.status).toBe(200);
			expect(await head.text()).toBe('');
			expect((await fetch(`${base}/nope`, { method: 'HEAD' })).status).toBe(404);
		});
	});

	describe('cancel: DELETE {base}/:runId and POST {base}/:runId/cancel', () => {
		it.each(['DELETE', 'POST'] as const)('%s cancels a running run: 200, then 409 with its status', async (method) => {
			const { manager, base } = await setup(mounting);
			const task = controlledTask();
			const runId = manager.startTask({ moduleId: 'render' }, task.fn);
			const context = await task.called;
			const url = method === 'DELETE' ? `${base}/${runId}` : `${base}/${runId}/cancel`;

			const response = await request(url, { method });
			expect(response.status).toBe(200);
			expect(response.headers.get('content-type')).toBe(JSON_TYPE);
			expect(response.body).toEqual({ success: true, runId, status: 'cancelled' });
			expect(context.signal.aborted).toBe(true);
			expect((await manager.getRun(runId))?.status).toBe('cancelled');

			const again = await request<ErrorBody>(url, { method });
			expect(again.status).toBe(409);
			expect(again.body).toEqual({ error: { name: 'RunFinishedError', message: `Run "${runId}" has already ended (cancelled)`, status: 'cancelled' } });
		});

		it('cancels a queued run, and a POST with a JSON body', async () => {
			const { manager, base } = await setup(mounting);
			const runId = manager.startTask({ moduleId: 'render' }, controlledTask().fn);
			expect(manager.getStats().queued).toBe(1);
			const response = await request(`${base}/${runId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"x"}' });
			expect(response.status).toBe(200);
			expect((await manager.getRun(runId))?.status).toBe('cancelled');
		});

		it('409 for a completed or failed run, naming its status', async () => {
			const { manager, base } = await setup(mounting);
			const completed = await finishedRun(manager);
			const failedId = manager.startTask({ moduleId: 'render' }, async () => {
				throw new Error('boom');
			});
			await manager.waitForRun(failedId);

			const first = await request<ErrorBody>(`${base}/${completed.runId}`, { method: 'DELETE' });
			expect(first.status).toBe(409);
			expect(first.body.error).toMatchObject({ name: 'RunFinishedError', status: 'completed' });
			const second = await request<ErrorBody>(`${base}/${failedId}/cancel`, { method: 'POST' });
			expect(second.status).toBe(409);
			expect(second.body.error).toMatchObject({ name: 'RunFinishedError', status: 'failed' });
		});

		it('404 for an unknown run', async () => {
			const { base } = await setup(mounting);
			for (const [url, method] of [[`${base}/nope`, 'DELETE'], [`${base}/nope/cancel`, 'POST']] as const) {
				const response = await request<ErrorBody>(url, { method });
				expect(response.status).toBe(404);
				expect(response.body).toEqual({ error: { name: 'RunNotFoundError', message: 'No run with id "nope"' } });
			}
		});

		it('cancels a run that another instance executes, through the registry', async () => {
			const registry = new MemoryRunRegistry();
			const { base } = await setup(mounting, {}, registry);
			const { manager: worker } = createManager({ progressThrottleMs: 0, reconcileIntervalMs: 20 }, registry);
			const task = controlledTask();
			const runId = worker.startTask({ moduleId: 'render' }, task.fn);
			const context = await task.called;
			await worker.flush();

			const response = await request(`${base}/${runId}`, { method: 'DELETE' });
			expect(response.status).toBe(200);
			expect(response.body).toEqual({ success: true, runId, status: 'cancelled' });
			expect((await registry.getRun(runId))?.status).toBe('cancelled');
			// The owner sees it on its next reconcile.
			await until(() => context.signal.aborted, 'the worker to abort the task');
		});
	});

	describe('methods and paths', () => {
		it.each([
			['POST', '', 'GET, HEAD'],
			['PUT', '', 'GET, HEAD'],
			['DELETE', '', 'GET, HEAD'],
			['PATCH', '/r1', 'GET, HEAD, DELETE'],
			['POST', '/r1', 'GET, HEAD, DELETE'],
			['OPTIONS', '/r1', 'GET, HEAD, DELETE'],
			['GET', '/r1/cancel', 'POST'],
			['DELETE', '/r1/cancel', 'POST'],
			['POST', '/r1/events', 'GET'],
			['HEAD', '/r1/events', 'GET'],
		])('405 for %s {base}%s with Allow: %s', async (method, path, allow) => {
			const { base } = await setup(mounting);
			const response = await request<ErrorBody>(`${base}${path}`, { method });
			expect(response.status).toBe(405);
			expect(response.headers.get('allow')).toBe(allow);
			if (method !== 'HEAD') {
				expect(response.headers.get('content-type')).toBe(JSON_TYPE);
				expect(response.body).toEqual({ error: { name: 'MethodNotAllowedError', message: `Method ${method} is not allowed here; allowed: ${allow}` } });
			}
		});

		it('404 NotFoundError for a path under the base that is no route', async () => {
			const { base } = await setup(mounting);
			for (const path of ['/r1/other', '/r1/events/x', '/r1/']) {
				const response = await request<ErrorBody>(`${base}${path}`);
				expect(response.status).toBe(404);
				expect(response.body).toEqual({ error: { name: 'NotFoundError', message: 'No such route' } });
			}
		});

		it('leaves every other path to the host', async () => {
			const { server } = await setup(mounting);
			const other = await request(`${server.origin}/other`);
			expect(other.status).toBe(200);
			expect(other.text).toBe('other');
			// Prefixes of the base path are not the base path.
			expect((await request(`${server.origin}/tasksx`)).status).toBe(404);
		});

		it('serves a custom basePath, trailing slash or not', async () => {
			const { manager, server } = await setup(mounting, { basePath: '/api/v1/runs/' });
			const run = await finishedRun(manager);
			expect((await request(`${server.origin}/api/v1/runs/${run.runId}`)).status).toBe(200);
			expect((await request(`${server.origin}/api/v1/runs`)).status).toBe(200);
			expect((await request(`${server.origin}/tasks/${run.runId}`)).status).toBe(404);
		});
	});

	describe('authorize', () => {
		it('403 ForbiddenError for each action it refuses', async () => {
			const refused = new Set<string>();
			const { manager, base } = await setup(mounting, { authorize: async (_req, action) => !refused.has(action) });
			const task = controlledTask();
			const runId = manager.startTask({ moduleId: 'render' }, task.fn);
			await task.called;

			// The stream of a running run does not end: its status is all this test reads.
			const streamStatus = async (): Promise<{ status: number; body: unknown }> => {
				const controller = new AbortController();
				const response = await fetch(`${base}/${runId}/events`, { signal: controller.signal });
				if (response.status !== 200) return { status: response.status, body: await response.json() };
				controller.abort();
				return { status: response.status, body: undefined };
			};
			const expectations: Array<[string, () => Promise<{ status: number; body: unknown }>, string]> = [
				['list', () => request(base), 'Not allowed to list runs'],
				['get', () => request(`${base}/${runId}`), 'Not allowed to get this run'],
				['events', streamStatus, 'Not allowed to follow the events of this run'],
				['cancel', () => request(`${base}/${runId}`, { method: 'DELETE' }), 'Not allowed to cancel this run'],
			];
			for (const [action, call, message] of expectations) {
				refused.add(action);
				const response = await call();
				expect(response.status).toBe(403);
				expect(response.body).toEqual({ error: { name: 'ForbiddenError', message } });
				refused.delete(action);
				expect((await call()).status).toBe(200);
			}

			expect((await manager.getRun(runId))?.status).toBe('cancelled');
		});

		it('restricts each user to their own runs (metadata.userId against a header)', async () => {
			const calls: Array<[string, string | undefined]> = [];
			const { manager, base } = await setup(mounting, {
				authorize: (req, action, run) => {
					calls.push([action, run?.runId]);
					const user = req.headers['x-user-id'];
					if (typeof user !== 'string') return false;
					return run === undefined || run.metadata?.userId === user;
				},
			});
			const alice = await finishedRun(manager, { metadata: { userId: 'alice' } });
			const bob = await finishedRun(manager, { metadata: { userId: 'bob' } });
			const aliceRunning = manager.startTask({ moduleId: 'render', metadata: { userId: 'alice' } }, controlledTask().fn);
			await manager.flush();
			const as = (user: string): RequestInit => ({ headers: { 'x-user-id': user } });

			const list = await request<{ runs: Run[] }>(base, as('alice'));
			expect(list.body.runs.map((run) => run.runId)).toEqual([aliceRunning, alice.runId]);
			expect((await request(base)).status).toBe(403);
			expect((await request(`${base}/${alice.runId}`, as('alice'))).status).toBe(200);
			expect((await request(`${base}/${bob.runId}`, as('alice'))).status).toBe(403);
			expect((await request(`${base}/${aliceRunning}`, { method: 'DELETE', ...as('bob') })).status).toBe(403);
			expect((await request(`${base}/${aliceRunning}/events`, as('bob'))).status).toBe(403);
			expect((await request(`${base}/${aliceRunning}`, { method: 'DELETE', ...as('alice') })).status).toBe(200);
			// An unknown run is a 404 without asking.
			calls.length = 0;
			expect((await request(`${base}/nope`, as('alice'))).status).toBe(404);
			expect(calls).toEqual([]);
		});

		it('403 when it throws, returns a non-true value or rejects; the throw is logged', async () => {
			const logger = new RecordingLogger();
			let behaviour: 'throw' | 'reject' | 'undefined' | 'truthy' = 'throw';
			const { manager, base } = await setup(mounting, {
				logger,
				authorize: ((): unknown => {
					if (behaviour === 'throw') throw new Error('auth backend down');
					if (behaviour === 'reject') return Promise.reject(new Error('auth backend down'));
					return behaviour === 'undefined' ? undefined : 'yes';
				}) as unknown as NonNullable<TaskHandlerOptions['authorize']>,
			});
			const run = await finishedRun(manager);
			for (const next of ['throw', 'reject', 'undefined', 'truthy'] as const) {
				behaviour = next;
				const response = await request<ErrorBody>(`${base}/${run.runId}`);
				expect(response.status).toBe(403);
				expect(response.body.error.name).toBe('ForbiddenError');
				expect(response.text).not.toContain('auth backend down');
			}

			const errors = logger.at('error');
			expect(errors).toHaveLength(2);
			expect(errors[0]!.object).toMatchObject({ action: 'get', runId: run.runId });
			expect((errors[0]!.object.err as Error).message).toBe('auth backend down');
		});
	});

	describe('internal errors', () => {
		it('500 with a generic message when the registry fails; the error goes to the logger', async () => {
			const logger = new RecordingLogger();
			const registry = new BrokenRegistry();
			const { manager, base } = await setup(mounting, { logger }, registry);
			const run = await finishedRun(manager);
			registry.failList = true;
			registry.failGet = true;

			for (const [url, method] of [[base, 'GET'], [`${base}/${run.runId}`, 'GET'], [`${base}/${run.runId}`, 'DELETE'], [`${base}/${run.runId}/events`, 'GET']] as const) {
				const response = await request(url, { method });
				expect(response.status).toBe(500);
				expect(response.headers.get('content-type')).toBe(JSON_TYPE);
				expect(response.body).toEqual({ error: { name: 'InternalError', message: 'Internal error' } });
				expect(response.text).not.toMatch(/secret|ECONNREFUSED|at |\.ts/u);
			}

			const errors = logger.at('error');
			expect(errors).toHaveLength(4);
			expect((errors[0]!.object.err as Error).message).toContain('ECONNREFUSED');
			expect(errors[0]!.object).toMatchObject({ method: 'GET' });
			expect(errors.every((entry) => entry.message === 'runledger/http: internal error')).toBe(true);
		});

		it('500 for a run whose result does not serialize', async () => {
			const logger = new RecordingLogger();
			const { manager, base } = await setup(mounting, { logger });
			const runId = manager.startTask({ moduleId: 'render' }, async () => 1);
			await manager.waitForRun(runId);
			// A registry that stores a BigInt, as one that keeps values by reference may.
			const { manager: other } = createManager();
			const bigRun = other.startTask({ moduleId: 'render' }, Promise.resolve(10n));
			await other.waitForRun(bigRun);
			const server = await startServer(mounting, other, { logger, basePath: '/big' });
			const response = await request(`${server.origin}/big/${bigRun}`);
			expect(response.status).toBe(500);
			expect(response.body).toEqual({ error: { name: 'InternalError', message: 'Internal error' } });
			expect((await request(`${base}/${runId}`)).status).toBe(200);
		});
	});
});

describe('createTaskHandler on node:http without next', () => {
	it('answers 404 JSON outside the base path', async () => {
		const { manager } = createManager();
		const handler = createTaskHandler(manager);
		const { createServer } = await import('node:http');
		const server = createServer(handler);
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		try {
			const { port } = server.address() as import('node:net').AddressInfo;
			const response = await request(`http://127.0.0.1:${port}/elsewhere`);
			expect(response.status).toBe(404);
			expect(response.headers.get('content-type')).toBe(JSON_TYPE);
			expect(response.body).toEqual({ error: { name: 'NotFoundError', message: 'No such route' } });
		} finally {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		}
	});

	it('calls next() outside the base path, and only there', () => {
		const { manager } = createManager();
		const handler = createTaskHandler(manager, { basePath: '/runs' });
		const calls: unknown[][] = [];
		const req = { url: '/elsewhere', method: 'GET', headers: {} } as import('node:http').IncomingMessage;
		handler(req, {} as import('node:http').ServerResponse, (...args: unknown[]) => calls.push(args));
		expect(calls).toEqual([[]]);
		// Express: `originalUrl` is the full path, even when a mount path stripped `url`.
		const mounted = { url: '/', originalUrl: '/api/elsewhere', method: 'GET', headers: {} } as unknown as import('node:http').IncomingMessage;
		handler(mounted, {} as import('node:http').ServerResponse, (...args: unknown[]) => calls.push(args));
		expect(calls).toEqual([[], []]);
	});
});

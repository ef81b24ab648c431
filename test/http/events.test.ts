/**
 * runledger/http event streams (`GET {base}/:runId/events`) against real servers — node:http,
 * Express and Fastify — read as raw text: framing, the snapshot, progress, the end after the
 * terminal event, heartbeats, Last-Event-ID resume, runs of another instance, and no listener or
 * timer left behind by clients that go away.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { type BackgroundTaskManager, MemoryRunRegistry, type Run } from '../../src/index.js';
import { EVENT_STREAM_HEADERS, type TaskHandlerOptions } from '../../src/http/index.js';
import { sleep, until } from '../support/deferred.js';
import { RUN_EVENTS } from '../support/event-recorder.js';
import { createManager, shutdownManagersAfterEach } from '../support/harness.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { controlledTask } from '../support/tasks.js';
import { MOUNTINGS, type Mounting, StreamReader, closeServers, request, startServer } from './support.js';

shutdownManagersAfterEach();
failOnUnhandledErrorsAfterEach();
afterEach(closeServers);

const EVENT_BLOCK = /^id: (\d+)\nevent: (status|progress)\ndata: (\{.*\})$/u;

async function setup(mounting: Mounting, options?: TaskHandlerOptions, registry = new MemoryRunRegistry()) {
	const { manager } = createManager({ progressThrottleMs: 0 }, registry);
	const server = await startServer(mounting, manager, options);
	return { manager, registry, server, base: `${server.origin}/tasks` };
}

/** Every block of the raw text: `retry: 2000` first, then events and pings, each well formed. */
function expectWellFormed(text: string): void {
	expect(text.startsWith('retry: 2000\n\n')).toBe(true);
	expect(text.endsWith('\n\n')).toBe(true);
	const blocks = text.slice('retry: 2000\n\n'.length, -2).split('\n\n').filter((block) => block !== '');
	for (const block of blocks) {
		if (block === ': ping') continue;
		expect(block).toMatch(EVENT_BLOCK);
	}
}

function expectIncreasingIds(ids: number[]): void {
	for (let index = 1; index < ids.length; index++) expect(ids[index]!).toBeGreaterThan(ids[index - 1]!);
}

function listenerCounts(manager: BackgroundTaskManager): number[] {
	return RUN_EVENTS.map((event) => manager.listenerCount(event));
}

describe.each(MOUNTINGS)('runledger/http event streams on %s', (mounting) => {
	it('sends the snapshot, each progress and the terminal status, then ends', async () => {
		const { manager, base, server } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render', itemId: 'chat-1' }, task.fn);
		const context = await task.called;

		const stream = await StreamReader.open(`${base}/${runId}/events`);
		expect(stream.response.status).toBe(200);
		for (const [name, value] of Object.entries(EVENT_STREAM_HEADERS)) {
			if (name === 'Connection') continue; // fetch hides hop-by-hop headers
			expect(stream.response.headers.get(name)).toBe(value);
		}
		expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');

		const [first] = await stream.waitForEvents(1);
		expect(stream.text.startsWith('retry: 2000\n\nid: ')).toBe(true);
		expect(first).toMatchObject({ event: 'status', data: { runId, status: 'running', itemId: 'chat-1' } });
		expect(first!.id).toBeGreaterThanOrEqual(first!.data.updatedAt as number);
		expect(server.handler.openStreams).toBe(1);

		context.reportProgress(25, 'a quarter');
		await stream.waitForEvents(2);
		context.reportProgress(50);
		await stream.waitForEvents(3);
		task.done.resolve({ url: 'https://cdn.example.com/a.mp4' });
		await stream.waitForEnd();

		const events = stream.events;
		expect(events.map((event) => [event.event, event.data.status, (event.data.progress as { percent?: number } | undefined)?.percent])).toEqual([
			['status', 'running', undefined],
			['progress', 'running', 25],
			['progress', 'running', 50],
			['status', 'completed', 50],
		]);
		expect(events[1]!.data.progress).toEqual({ percent: 25, message: 'a quarter' });
		// The last event is the run as stored.
		await manager.flush();
		expect(events[3]!.data).toEqual(await manager.getRun(runId));
		expectIncreasingIds(events.map((event) => event.id));
		expectWellFormed(stream.text);
		await until(() => server.handler.openStreams === 0, 'the stream to close');
	});

	it('gives every event a larger id than the last, even within one millisecond', async () => {
		const { manager, base } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		const context = await task.called;
		const stream = await StreamReader.open(`${base}/${runId}/events`);
		await stream.waitForEvents(1);
		for (let percent = 1; percent <= 10; percent++) context.reportProgress(percent);
		task.done.resolve(undefined);
		await stream.waitForEnd();
		const events = stream.events;
		expect(events).toHaveLength(12);
		expectIncreasingIds(events.map((event) => event.id));
		for (const event of events) expect(event.id).toBeGreaterThanOrEqual(event.data.updatedAt as number);
		expectWellFormed(stream.text);
	});

	it('follows a queued run through its cancel over HTTP', async () => {
		const { manager } = createManager({ concurrency: 1, progressThrottleMs: 0 });
		const server = await startServer(mounting, manager, { basePath: '/q' });
		const blocker = controlledTask();
		manager.startTask({ moduleId: 'render' }, blocker.fn);
		const queued = manager.startTask({ moduleId: 'render' }, controlledTask().fn);

		const stream = await StreamReader.open(`${server.origin}/q/${queued}/events`);
		expect((await stream.waitForEvents(1))[0]).toMatchObject({ event: 'status', data: { status: 'queued' } });
		expect((await request(`${server.origin}/q/${queued}`, { method: 'DELETE' })).status).toBe(200);
		await stream.waitForEnd();
		expect(stream.events.map((event) => [event.event, event.data.status])).toEqual([['status', 'queued'], ['status', 'cancelled']]);
		blocker.done.resolve(undefined);
	});

	it('never sends the stack of a failed run', async () => {
		const { manager, base } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		const stream = await StreamReader.open(`${base}/${runId}/events`);
		await stream.waitForEvents(1);
		task.done.reject(new Error('disk full'));
		await stream.waitForEnd();
		const last = stream.events.at(-1)!;
		expect(last).toMatchObject({ event: 'status', data: { status: 'failed', error: { name: 'Error', message: 'disk full' } } });
		expect(stream.text).not.toContain('stack');
		expect(stream.text).not.toContain('events.test.ts');
	});

	it('sends one event and ends for a run that has already ended', async () => {
		const { manager, base, server } = await setup(mounting);
		const runId = manager.startTask({ moduleId: 'render' }, async () => 'done');
		await manager.waitForRun(runId);
		const stream = await StreamReader.open(`${base}/${runId}/events`);
		await stream.waitForEnd();
		expect(stream.events.map((event) => [event.event, event.data.status, event.data.result])).toEqual([['status', 'completed', 'done']]);
		expectWellFormed(stream.text);
		await until(() => server.handler.openStreams === 0, 'the stream to close');
	});

	it('sends a `: ping` comment every heartbeatMs', async () => {
		const { manager, base } = await setup(mounting, { heartbeatMs: 30 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		const stream = await StreamReader.open(`${base}/${runId}/events`);
		await stream.waitForText((text) => text.split(': ping\n\n').length > 3);
		expect(stream.blocks.filter((block) => block.comment === 'ping').length).toBeGreaterThanOrEqual(3);
		task.done.resolve(undefined);
		await stream.waitForEnd();
		expectWellFormed(stream.text);
	});

	it.each(['header', 'query'] as const)('resumes after Last-Event-ID (%s): nothing repeated, the rest arrives', async (via) => {
		const { manager, base } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		const context = await task.called;
		const url = `${base}/${runId}/events`;
		const resume = (id: number): Promise<StreamReader> =>
			via === 'header' ? StreamReader.open(url, { 'Last-Event-ID': String(id) }) : StreamReader.open(`${url}?lastEventId=${id}`);

		const first = await StreamReader.open(url);
		await first.waitForEvents(1);
		context.reportProgress(10);
		const seen = await first.waitForEvents(2);
		await first.close();

		// Changes while no client listens.
		await sleep(2);
		context.reportProgress(20);
		await sleep(2);
		context.reportProgress(30, 'later');

		const second = await resume(seen[1]!.id);
		const [snapshot] = await second.waitForEvents(1);
		expect(snapshot).toMatchObject({ event: 'status', data: { status: 'running', progress: { percent: 30, message: 'later' } } });
		context.reportProgress(40);
		await second.waitForEvents(2);
		task.done.resolve('ok');
		await second.waitForEnd();

		const all = [...seen, ...second.events];
		expect(all.map((event) => (event.data.progress as { percent: number } | undefined)?.percent ?? null)).toEqual([null, 10, 30, 40, 40]);
		expect(all.at(-1)).toMatchObject({ event: 'status', data: { status: 'completed' } });
		expectIncreasingIds(all.map((event) => event.id));
		expectWellFormed(second.text);
	});

	it('waits for the next change when the client already has the current state', async () => {
		const { manager, base } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		const context = await task.called;
		const url = `${base}/${runId}/events`;
		const first = await StreamReader.open(url);
		const [snapshot] = await first.waitForEvents(1);
		await first.close();

		const second = await StreamReader.open(url, { 'Last-Event-ID': String(snapshot!.id) });
		await sleep(50);
		expect(second.events).toEqual([]);
		expect(second.text).toBe('retry: 2000\n\n');
		await sleep(2);
		context.reportProgress(60);
		const [next] = await second.waitForEvents(1);
		expect(next).toMatchObject({ event: 'progress', data: { progress: { percent: 60 } } });
		expect(next!.id).toBeGreaterThan(snapshot!.id);
		task.done.resolve(undefined);
		await second.waitForEnd();
	});

	it('ends at once a resumed stream whose terminal event the client has seen', async () => {
		const { manager, base, server } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		const url = `${base}/${runId}/events`;
		const first = await StreamReader.open(url);
		await first.waitForEvents(1);
		task.done.resolve(undefined);
		await first.waitForEnd();
		const last = first.events.at(-1)!;
		expect(last.data.status).toBe('completed');

		const again = await StreamReader.open(url, { 'Last-Event-ID': String(last.id) });
		expect(again.response.status).toBe(200);
		await again.waitForEnd();
		expect(again.text).toBe('retry: 2000\n\n');
		// An older id gets the terminal state once more.
		const older = await StreamReader.open(url, { 'Last-Event-ID': String(first.events[0]!.id) });
		await older.waitForEnd();
		expect(older.events.map((event) => event.data.status)).toEqual(['completed']);
		await until(() => server.handler.openStreams === 0, 'the streams to close');
	});

	it('follows a run that another instance executes, by polling the registry', async () => {
		const registry = new MemoryRunRegistry();
		const { manager, server } = await setup(mounting, { pollIntervalMs: 10 }, registry);
		const { manager: worker } = createManager({ progressThrottleMs: 0, instanceId: 'worker-1' }, registry);
		const task = controlledTask();
		const runId = worker.startTask({ moduleId: 'render' }, task.fn);
		const context = await task.called;
		await worker.flush();
		const baseline = listenerCounts(manager);

		const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
		expect((await stream.waitForEvents(1))[0]).toMatchObject({ event: 'status', data: { status: 'running', ownerId: 'worker-1' } });
		expect(manager.isTaskActive(runId)).toBe(false);
		expect(server.handler.activeTimers).toBeGreaterThanOrEqual(1);

		context.reportProgress(40, 'remote');
		await stream.waitForEvents(2);
		context.reportProgress(80);
		await stream.waitForEvents(3);
		task.done.resolve({ frames: 3 });
		await stream.waitForEnd();

		expect(stream.events.map((event) => [event.event, event.data.status, (event.data.progress as { percent: number } | undefined)?.percent])).toEqual([
			['status', 'running', undefined],
			['progress', 'running', 40],
			['progress', 'running', 80],
			['status', 'completed', 80],
		]);
		expect(stream.events.at(-1)!.data).toEqual(await registry.getRun(runId));
		expectIncreasingIds(stream.events.map((event) => event.id));
		await until(() => server.handler.openStreams === 0 && server.handler.activeTimers === 0, 'the stream to close');
		expect(listenerCounts(manager)).toEqual(baseline);
	});

	it('ends the stream of a remote run cancelled through this handler', async () => {
		const registry = new MemoryRunRegistry();
		const { server } = await setup(mounting, { pollIntervalMs: 5000 }, registry);
		const { manager: worker } = createManager({ progressThrottleMs: 0 }, registry);
		const runId = worker.startTask({ moduleId: 'render' }, controlledTask().fn);
		await worker.flush();
		const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
		await stream.waitForEvents(1);
		// The cancel is this manager's event: the stream needs no poll to see it.
		expect((await request(`${server.origin}/tasks/${runId}/cancel`, { method: 'POST' })).status).toBe(200);
		await stream.waitForEnd(1000);
		expect(stream.events.map((event) => event.data.status)).toEqual(['running', 'cancelled']);
	});

	it('leaves no listener, timer or stream behind when clients go away', async () => {
		const registry = new MemoryRunRegistry();
		const { manager, server } = await setup(mounting, { pollIntervalMs: 10, heartbeatMs: 20 }, registry);
		const { manager: worker } = createManager({ progressThrottleMs: 0 }, registry);
		const baseline = listenerCounts(manager);
		const { handler } = server;

		const local = controlledTask();
		const localId = manager.startTask({ moduleId: 'render' }, local.fn);
		const localContext = await local.called;
		const remote = controlledTask();
		const remoteId = worker.startTask({ moduleId: 'render' }, remote.fn);
		const remoteContext = await remote.called;
		await worker.flush();

		const streams: StreamReader[] = [];
		for (let index = 0; index < 4; index++) streams.push(await StreamReader.open(`${server.origin}/tasks/${localId}/events`));
		for (let index = 0; index < 3; index++) streams.push(await StreamReader.open(`${server.origin}/tasks/${remoteId}/events`));
		await Promise.all(streams.map((stream) => stream.waitForEvents(1)));

		expect(handler.openStreams).toBe(7);
		// One listener per event for all the streams, not one per stream.
		expect(listenerCounts(manager)).toEqual(baseline.map((count) => count + 1));
		// A heartbeat each, and a poll timer each for the remote ones (unless a poll is in flight).
		expect(handler.activeTimers).toBeGreaterThanOrEqual(7);
		expect(handler.activeTimers).toBeLessThanOrEqual(10);

		await Promise.all(streams.map((stream) => stream.close()));
		await until(() => handler.openStreams === 0, 'every stream to close');
		expect(handler.activeTimers).toBe(0);
		expect(listenerCounts(manager)).toEqual(baseline);

		// The runs go on without listeners: nothing is written to closed sockets, nothing escapes.
		localContext.reportProgress(50);
		remoteContext.reportProgress(50);
		await sleep(40);
		local.done.resolve(undefined);
		remote.done.resolve(undefined);
		await manager.waitForRun(localId);
		await worker.waitForRun(remoteId);
		expect(handler.activeTimers).toBe(0);
	});

	it('closes the stream of a client that goes away mid-run, with heartbeats due', async () => {
		const { manager, server } = await setup(mounting, { heartbeatMs: 5 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		const context = await task.called;
		for (let round = 0; round < 5; round++) {
			const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
			await stream.waitForEvents(1);
			context.reportProgress(round * 10);
			void stream.close();
			context.reportProgress(round * 10 + 5);
		}

		await until(() => server.handler.openStreams === 0, 'every stream to close');
		await sleep(20);
		expect(server.handler.activeTimers).toBe(0);
		task.done.resolve(undefined);
	});

	it('closeStreams() ends every open stream', async () => {
		const { manager, server } = await setup(mounting);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		const streams = [await StreamReader.open(`${server.origin}/tasks/${runId}/events`), await StreamReader.open(`${server.origin}/tasks/${runId}/events`)];
		await Promise.all(streams.map((stream) => stream.waitForEvents(1)));
		server.handler.closeStreams();
		await Promise.all(streams.map((stream) => stream.waitForEnd()));
		expect(server.handler.openStreams).toBe(0);
		expect(server.handler.activeTimers).toBe(0);
		task.done.resolve(undefined);
	});

	it('answers errors as JSON, not as a stream', async () => {
		const { manager, base, server } = await setup(mounting);
		const run = manager.startTask({ moduleId: 'render' }, async () => 1);
		await manager.waitForRun(run);
		const cases: Array<[string, Record<string, string>, number, Record<string, unknown>]> = [
			[`${base}/nope/events`, {}, 404, { name: 'RunNotFoundError', message: 'No run with id "nope"' }],
			[`${base}/${run}/events`, { 'Last-Event-ID': 'abc' }, 400, { name: 'ValidationError', field: 'Last-Event-ID' }],
			[`${base}/${run}/events`, { 'Last-Event-ID': '-1' }, 400, { name: 'ValidationError', field: 'Last-Event-ID' }],
			[`${base}/${run}/events?lastEventId=1.5`, {}, 400, { name: 'ValidationError', field: 'lastEventId' }],
			[`${base}/${run}/events?lastEventId=1&lastEventId=2`, {}, 400, { name: 'ValidationError', field: 'lastEventId' }],
			[`${base}/${run}/events?since=1`, {}, 400, { name: 'ValidationError', field: 'since' }],
		];
		for (const [url, headers, status, error] of cases) {
			const response = await request<{ error: Record<string, unknown> }>(url, { headers });
			expect(response.status).toBe(status);
			expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
			expect(response.body.error).toMatchObject(error);
		}

		expect(server.handler.openStreams).toBe(0);
		expect(server.handler.activeTimers).toBe(0);
	});
});

describe('event stream internals', () => {
	it('keeps no manager listener while no stream is open, and reads a run once per poll', async () => {
		const registry = new MemoryRunRegistry();
		const { manager } = createManager({ progressThrottleMs: 0 }, registry);
		const baseline = listenerCounts(manager);
		const server = await startServer('node:http', manager, { pollIntervalMs: 10 });
		expect(listenerCounts(manager)).toEqual(baseline);
		const { manager: worker } = createManager({}, registry);
		const task = controlledTask();
		const runId = worker.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		await worker.flush();

		let reads = 0;
		const getRun = registry.getRun.bind(registry);
		registry.getRun = async (id: string): Promise<Run | undefined> => {
			if (id === runId) reads++;
			return getRun(id);
		};
		const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
		await stream.waitForEvents(1);
		reads = 0;
		await sleep(105);
		// About one read per 10 ms, never several at once.
		expect(reads).toBeGreaterThanOrEqual(2);
		expect(reads).toBeLessThanOrEqual(12);
		await stream.close();
		await until(() => server.handler.openStreams === 0, 'the stream to close');
		reads = 0;
		await sleep(30);
		expect(reads).toBe(0);
		task.done.resolve(undefined);
	});

	it('ends the stream when the followed run disappears from the registry', async () => {
		const registry = new MemoryRunRegistry();
		const { manager } = createManager({}, registry);
		const server = await startServer('node:http', manager, { pollIntervalMs: 10 });
		const { manager: worker } = createManager({}, registry);
		const task = controlledTask();
		const runId = worker.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		await worker.flush();
		const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
		await stream.waitForEvents(1);
		await registry.deleteRun(runId);
		await stream.waitForEnd();
		expect(server.handler.openStreams).toBe(0);
		task.done.resolve(undefined);
	});

	it('keeps following through registry read failures, logging them', async () => {
		const registry = new MemoryRunRegistry();
		const { manager } = createManager({}, registry);
		const warnings: unknown[] = [];
		const noop = (): void => {};
		const server = await startServer('node:http', manager, { pollIntervalMs: 10, logger: { debug: noop, info: noop, error: noop, warn: (object) => warnings.push(object) } });
		const { manager: worker } = createManager({ progressThrottleMs: 0 }, registry);
		const task = controlledTask();
		const runId = worker.startTask({ moduleId: 'render' }, task.fn);
		await task.called;
		await worker.flush();
		const stream = await StreamReader.open(`${server.origin}/tasks/${runId}/events`);
		await stream.waitForEvents(1);

		const getRun = registry.getRun.bind(registry);
		let failing = true;
		registry.getRun = async (id: string): Promise<Run | undefined> => {
			if (failing) throw new Error('registry down');
			return getRun(id);
		};
		await until(() => warnings.length >= 2, 'failed polls to be logged');
		failing = false;
		task.done.resolve('ok');
		await stream.waitForEnd();
		expect(stream.events.map((event) => event.data.status)).toEqual(['running', 'completed']);
	});
});

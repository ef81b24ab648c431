/**
 * runledger/http: option validation, and mountings beyond the plain ones — an Express mount path,
 * a Fastify prefix.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';

import { ValidationError } from '../../src/index.js';
import { createTaskHandler, fastifyTaskPlugin } from '../../src/http/index.js';
import { createManager, shutdownManagersAfterEach } from '../support/harness.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { request } from './support.js';

shutdownManagersAfterEach();
failOnUnhandledErrorsAfterEach();

describe('createTaskHandler options', () => {
	it.each([
		[{ basePath: 'tasks' }, 'basePath'],
		[{ basePath: '/tasks?x' }, 'basePath'],
		[{ basePath: '//tasks' }, 'basePath'],
		[{ maxListLimit: 0 }, 'maxListLimit'],
		[{ maxListLimit: 10_001 }, 'maxListLimit'],
		[{ maxListLimit: 1.5 }, 'maxListLimit'],
		[{ heartbeatMs: 0 }, 'heartbeatMs'],
		[{ pollIntervalMs: Number.NaN }, 'pollIntervalMs'],
		[{ authorize: 'yes' }, 'authorize'],
		[{ logger: { debug() {}, info() {}, warn() {} } }, 'logger.error'],
	])('refuses %j with a ValidationError naming %s', (options, field) => {
		const { manager } = createManager();
		let thrown: unknown;
		try {
			createTaskHandler(manager, options as never);
		} catch (error) {
			thrown = error;
		}

		expect(thrown).toBeInstanceOf(ValidationError);
		expect((thrown as ValidationError).field).toBe(field);
	});

	it('refuses something that is not a manager', () => {
		expect(() => createTaskHandler({} as never)).toThrow(ValidationError);
	});

	it('fails the Fastify registration on bad options', async () => {
		const { manager } = createManager();
		const app = Fastify();
		await expect(app.register(fastifyTaskPlugin, { manager, maxListLimit: -1 })).rejects.toMatchObject({ name: 'ValidationError', field: 'maxListLimit' });
		await app.close().catch(() => {});
	});
});

describe('mount points', () => {
	it('Express: a handler under app.use(path) matches the full path (originalUrl)', async () => {
		const { manager } = createManager();
		const runId = manager.startTask({ moduleId: 'render' }, async () => 1);
		await manager.waitForRun(runId);
		const app = express();
		app.use('/api', createTaskHandler(manager, { basePath: '/api/tasks' }));
		app.use((_req, res) => {
			res.status(418).send('host');
		});
		const server = createServer(app);
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		try {
			const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
			expect((await request(`${origin}/api/tasks/${runId}`)).status).toBe(200);
			expect((await request(`${origin}/api/tasks`)).status).toBe(200);
			expect((await request(`${origin}/api/other`)).status).toBe(418);
		} finally {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		}
	});

	it('Fastify: the plugin serves basePath under the prefix it is registered with', async () => {
		const { manager } = createManager();
		const runId = manager.startTask({ moduleId: 'render' }, async () => 1);
		await manager.waitForRun(runId);
		const app = Fastify({ forceCloseConnections: true });
		await app.register(fastifyTaskPlugin, { manager, prefix: '/api', basePath: '/runs' });
		// The plugin's content type parsers stay in its context: the host's JSON routes still parse.
		app.post('/echo', async (req) => req.body);
		await app.listen({ port: 0, host: '127.0.0.1' });
		try {
			const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
			expect((await request(`${origin}/api/runs/${runId}`)).status).toBe(200);
			expect((await request(`${origin}/api/runs`)).status).toBe(200);
			expect((await request(`${origin}/runs/${runId}`)).status).toBe(404);
			const echo = await request(`${origin}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
			expect(echo.body).toEqual({ a: 1 });
		} finally {
			await app.close();
		}
	});
});

/**
 * The package as users get it: `npm pack` the built package, install the tarball into a fresh
 * project, then `import` it from ESM and `require` it from CommonJS. Needs `dist/` (`npm run build`;
 * `npm test` builds first).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

interface PackResult {
	readonly filename: string;
	readonly files: ReadonlyArray<{ readonly path: string }>;
}

// Starts a task on a MemoryRunRegistry and prints `<label> <status> <result> …`; the last field
// says whether runledger/redis throws the very ValidationError class runledger exports (one copy
// of the error classes per module system, shared by every subpath).
const consumer = (label: string, load: string): string => `${load}

async function main() {
	const manager = new BackgroundTaskManager(new MemoryRunRegistry());
	const runId = manager.startTask({ moduleId: 'pack-check', parameters: { n: 20 } }, async ({ parameters, reportProgress }) => {
		reportProgress(50, 'halfway');
		return parameters.n + 22;
	});
	const waited = await manager.waitAll({ timeoutMs: 10000 });
	await manager.flush();
	const run = await manager.getRun(runId);
	const report = await manager.shutdown({ graceMs: 1000 });
	const errorOk = new ValidationError('x', 'y', 1) instanceof RunledgerError;
	let redisOk = false;
	try {
		new RedisRunRegistry({ client: {} });
	} catch (error) {
		redisOk = error instanceof ValidationError && error.field === 'client';
	}
	console.log([${JSON.stringify(label)}, run && run.status, run && run.result, waited.settled, report.unsettled.length, errorOk, typeof describeRunRegistryConformance, typeof describeCancellationBusConformance, typeof RedisCancellationBus, redisOk, typeof createTaskHandler, typeof fastifyTaskPlugin, typeof waitForRun, typeof watchRun].join(' '));
}

main().catch((error) => {
	console.error(error);
	process.exitCode = 1;
});
`;

const esm = consumer(
	'esm',
	`import { BackgroundTaskManager, MemoryRunRegistry, RunledgerError, ValidationError } from 'runledger';
import { describeCancellationBusConformance, describeRunRegistryConformance } from 'runledger/testing';
import { RedisCancellationBus, RedisRunRegistry } from 'runledger/redis';
import { createTaskHandler, fastifyTaskPlugin } from 'runledger/http';
import { waitForRun, watchRun } from 'runledger/client';`,
);

const cjs = consumer(
	'cjs',
	`'use strict';
const { BackgroundTaskManager, MemoryRunRegistry, RunledgerError, ValidationError } = require('runledger');
const { describeCancellationBusConformance, describeRunRegistryConformance } = require('runledger/testing');
const { RedisCancellationBus, RedisRunRegistry } = require('runledger/redis');
const { createTaskHandler, fastifyTaskPlugin } = require('runledger/http');
const { waitForRun, watchRun } = require('runledger/client');`,
);

describe('the packed package', () => {
	let work: string;
	let pack: PackResult;

	beforeAll(async () => {
		for (const file of ['dist/index.js', 'dist/index.cjs', 'dist/testing/index.js', 'dist/testing/index.cjs', 'dist/redis/index.js', 'dist/redis/index.cjs', 'dist/http/index.js', 'dist/client/index.cjs']) {
			if (!existsSync(join(root, file))) throw new Error(`${file} is missing: run \`npm run build\` first (\`npm test\` does)`);
		}

		work = await mkdtemp(join(tmpdir(), 'runledger-pack-'));
		const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
		// Lifecycle scripts may print before the JSON; it is the last top-level array printed.
		const [result] = JSON.parse(stdout.slice(stdout.lastIndexOf('\n[') + 1)) as PackResult[];
		pack = result!;

		const project = join(work, 'consumer');
		await mkdir(project);
		await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2)}\n`);
		await writeFile(join(project, 'esm.mjs'), esm);
		await writeFile(join(project, 'cjs.cjs'), cjs);
		await run('npm', ['install', join(work, pack.filename), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
			cwd: project,
			maxBuffer: 16 * 1024 * 1024,
		});
	});

	afterAll(async () => {
		if (work !== undefined) await rm(work, { recursive: true, force: true });
	});

	it('contains the builds, their types, README, CHANGELOG and LICENSE, and no sources or tests', () => {
		const paths = pack.files.map((file) => file.path);
		expect(paths).toEqual(
			expect.arrayContaining([
				'package.json',
				'README.md',
				'CHANGELOG.md',
				'LICENSE',
				'dist/index.js',
				'dist/index.cjs',
				'dist/index.d.ts',
				'dist/index.d.cts',
				'dist/testing/index.js',
				'dist/testing/index.cjs',
				'dist/testing/index.d.ts',
				'dist/testing/index.d.cts',
				'dist/redis/index.js',
				'dist/redis/index.cjs',
				'dist/redis/index.d.ts',
				'dist/redis/index.d.cts',
				'dist/http/index.js',
				'dist/http/index.cjs',
				'dist/http/index.d.ts',
				'dist/http/index.d.cts',
				'dist/client/index.js',
				'dist/client/index.cjs',
				'dist/client/index.d.ts',
				'dist/client/index.d.cts',
			]),
		);
		expect(paths.filter((path) => /^(src|test|examples|docs|\.ci)\//.test(path))).toEqual([]);
		expect(paths.filter((path) => path.endsWith('.tgz'))).toEqual([]);
	});

	it('works from an ES module: import runledger, runledger/testing and runledger/redis', async () => {
		const { stdout } = await run(process.execPath, ['esm.mjs'], { cwd: join(work, 'consumer') });
		expect(stdout.trim()).toBe('esm completed 42 true 0 true function function function true function function function function');
	});

	it('works from CommonJS: require runledger, runledger/testing and runledger/redis', async () => {
		const { stdout } = await run(process.execPath, ['cjs.cjs'], { cwd: join(work, 'consumer') });
		expect(stdout.trim()).toBe('cjs completed 42 true 0 true function function function true function function function function');
	});
});

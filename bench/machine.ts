/** What the figures were measured on: machine, versions, source revision. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

import { redisServerVersion } from './redis-server.js';

export interface Machine {
	readonly cpu: string;
	readonly cores: number;
	readonly memory: string;
	readonly loadAverage: string;
	readonly node: string;
	readonly v8: string;
	readonly platform: string;
	readonly redisServer: string;
	readonly packages: Record<string, string>;
	readonly revision: string;
}

const root = fileURLToPath(new URL('..', import.meta.url));

function packageVersion(name: string): string {
	try {
		return (JSON.parse(readFileSync(`${root}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
	} catch {
		return 'not installed';
	}
}

function git(args: string[]): string {
	try {
		return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
	} catch {
		return '';
	}
}

export function describeMachine(): Machine {
	const ownVersion = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version;
	const commit = git(['rev-parse', '--short', 'HEAD']);
	const dirty = git(['status', '--porcelain', '--', 'src']) !== '';
	return {
		cpu: cpus()[0]?.model.trim() ?? 'unknown',
		cores: cpus().length,
		memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
		loadAverage: loadavg().map((load) => load.toFixed(2)).join(' / '),
		node: process.version,
		v8: process.versions.v8,
		platform: `${process.platform} ${process.arch}`,
		redisServer: redisServerVersion(),
		packages: {
			runledger: `${ownVersion} (src/ at ${commit || 'unknown commit'}${dirty ? ', with uncommitted changes' : ''})`,
			'p-limit': packageVersion('p-limit'),
			'p-queue': packageVersion('p-queue'),
			bullmq: packageVersion('bullmq'),
			ioredis: packageVersion('ioredis'),
			tsx: packageVersion('tsx'),
		},
		revision: commit,
	};
}

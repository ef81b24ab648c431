/**
 * The example page (examples/public/index.html, served by examples/http-server.ts) in a real
 * headless Chromium: Debian's `chromium` package, driven by playwright-core.
 *
 * Without /usr/bin/chromium the file is skipped with a notice, except under CI=true, where
 * `.ci/run` installs it and its absence fails the run.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServer, type RunningServer } from '../../examples/http-server.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const inCi = process.env['CI'] === 'true';

if (!hasChromium && !inCi) {
	console.warn(`\n[test/browser] ${CHROMIUM} not found: the example page test is SKIPPED. Install it with \`apt-get install chromium\`.\n`);
}

failOnUnhandledErrorsAfterEach();

describe.skipIf(!hasChromium && !inCi)('examples/public/index.html in headless Chromium', () => {
	let server: RunningServer;
	let browser: Browser;
	let page: Page;
	let screenshotDir: string;
	const pageErrors: string[] = [];

	beforeAll(async () => {
		if (!hasChromium) throw new Error(`CI=true but ${CHROMIUM} is missing: .ci/run must install the chromium package`);
		server = await startServer({ port: 0 });
		screenshotDir = await mkdtemp(join(tmpdir(), 'runledger-browser-'));
		browser = await chromium.launch({
			executablePath: CHROMIUM,
			args: [
				'--headless',
				'--no-sandbox',
				'--disable-gpu',
				'--disable-background-networking',
				'--disable-component-update',
				'--disable-sync',
				'--no-first-run',
				'--disable-quic',
			],
		});
		page = await browser.newPage({ viewport: { width: 900, height: 700 } });
		page.on('pageerror', (error) => pageErrors.push(error.message));
		page.on('console', (message) => {
			if (message.type() === 'error') pageErrors.push(message.text());
		});
		const response = await page.goto(`${server.url}/`);
		expect(response?.status()).toBe(200);
	}, 60_000);

	afterAll(async () => {
		await browser?.close();
		await server?.close();
		if (screenshotDir !== undefined && process.env['KEEP_SCREENSHOTS'] !== '1') await rm(screenshotDir, { recursive: true, force: true });
	}, 30_000);

	async function submit(title: string, seconds: number): Promise<string> {
		await page.getByLabel('Title').fill(title);
		await page.getByLabel('Duration (seconds)').fill(String(seconds));
		const [response] = await Promise.all([
			page.waitForResponse((r) => r.url().endsWith('/videos') && r.request().method() === 'POST'),
			page.getByRole('button', { name: 'Render' }).click(),
		]);
		expect(response.status()).toBe(202);
		const { runId } = (await response.json()) as { runId: string };
		return runId;
	}

	it('submits a job and shows its bar move to 100 % and the status completed', async () => {
		const runId = await submit('Intro', 2);
		const job = page.locator(`[data-testid="job"][data-run-id="${runId}"]`);
		await expect.poll(() => job.count()).toBe(1);
		const bar = job.getByRole('progressbar', { name: 'Progress of Intro' });

		// The bar moves through intermediate values before it completes.
		const seen = new Set<number>();
		const deadline = Date.now() + 20_000;
		while (Date.now() < deadline) {
			seen.add(Number(await bar.getAttribute('value')));
			if ((await job.getByTestId('job-status').textContent()) === 'completed') break;
			await page.waitForTimeout(50);
		}
		expect(await job.getByTestId('job-status').textContent()).toBe('completed');
		expect(Number(await bar.getAttribute('value'))).toBe(100);
		expect(await bar.evaluate((element) => (element as unknown as { value: number }).value)).toBe(100);
		expect(await job.getByTestId('job-percent').textContent()).toBe('100 %');
		expect([...seen].some((value) => value > 0 && value < 100)).toBe(true);
		expect(await job.getByRole('button', { name: 'Cancel Intro' }).isDisabled()).toBe(true);
		expect((await server.manager.getRun(runId))?.status).toBe('completed');
	});

	it('cancels a second job with its Cancel button and shows it end cancelled', async () => {
		const runId = await submit('Long outro', 20);
		const job = page.locator(`[data-testid="job"][data-run-id="${runId}"]`);
		const status = job.getByTestId('job-status');
		const bar = job.getByRole('progressbar', { name: 'Progress of Long outro' });
		// Running, and its bar has moved (one step every second).
		await expect.poll(async () => Number(await bar.getAttribute('value')), { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
		expect(await status.textContent()).toBe('running');
		const [cancel] = await Promise.all([
			page.waitForResponse((r) => r.url().endsWith(`/tasks/${runId}/cancel`)),
			job.getByRole('button', { name: 'Cancel Long outro' }).click(),
		]);
		expect(cancel.status()).toBe(200);
		await expect.poll(() => status.textContent(), { timeout: 10_000 }).toBe('cancelled');
		expect((await server.manager.getRun(runId))?.status).toBe('cancelled');
		expect(Number(await bar.getAttribute('value'))).toBeLessThan(100);
		expect(await job.getByTestId('job-message').textContent()).toMatch(/^Cancelled at \d+ %$/);
		expect(await job.getByRole('button', { name: 'Cancel Long outro' }).isDisabled()).toBe(true);

		const file = join(screenshotDir, 'example-page.png');
		await page.screenshot({ path: file, fullPage: true });
		expect((await stat(file)).size).toBeGreaterThan(1_000);
		if (process.env['KEEP_SCREENSHOTS'] === '1') console.log(`screenshot: ${file}`);
		expect(pageErrors).toEqual([]);
	});
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
	test: {
		projects: [
			{
				test: {
					name: 'unit',
					include: ['test/**/*.test.ts'],
					exclude: ['test/package/**'],
					testTimeout: 20_000,
				},
			},
			{
				test: {
					// Packs the built package and installs it into a temporary project: needs `npm run build` first.
					name: 'package',
					include: ['test/package/**/*.test.ts'],
					testTimeout: 180_000,
					hookTimeout: 180_000,
				},
			},
		],
	},
});

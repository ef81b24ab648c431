/**
 * The bus conformance suite on LocalCancellationBus. One LocalCancellationBus is the medium; each
 * bus the suite asks for is a view of it whose close() ends only the subscriptions made through it
 * (closing the shared bus itself would end every view's).
 */
import { describe, expect, it } from 'vitest';

import { type CancellationBus, LocalCancellationBus, type Unsubscribe } from '../src/bus.js';
import { describeCancellationBusConformance } from '../src/testing/index.js';

const medium = new LocalCancellationBus();

function view(): CancellationBus {
	const subscriptions = new Set<Unsubscribe>();
	let closed = false;
	return {
		publish: async (command) => {
			if (!closed) await medium.publish(command);
		},
		subscribe: async (handler, onError) => {
			if (closed) return async () => {};
			const unsubscribe = await medium.subscribe(handler, onError);
			subscriptions.add(unsubscribe);
			return async () => {
				subscriptions.delete(unsubscribe);
				await unsubscribe();
			};
		},
		close: async () => {
			closed = true;
			for (const unsubscribe of subscriptions) await unsubscribe();
			subscriptions.clear();
		},
	};
}

describeCancellationBusConformance({ describe, it, expect }, view, { name: 'LocalCancellationBus' });

describe('LocalCancellationBus itself', () => {
	it('close() ends every subscription and publish afterwards delivers nothing', async () => {
		const bus = new LocalCancellationBus();
		const received: string[] = [];
		await bus.subscribe((command) => received.push(command.runId));
		await bus.publish({ type: 'cancel', runId: 'before' });
		await new Promise((resolve) => setTimeout(resolve, 0));
		await bus.close();
		await bus.publish({ type: 'cancel', runId: 'after' });
		await bus.subscribe((command) => received.push(command.runId));
		await bus.publish({ type: 'cancel', runId: 'after-subscribe' });
		await new Promise((resolve) => setTimeout(resolve, 0));
		expect(received).toEqual(['before']);
	});
});

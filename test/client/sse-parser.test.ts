import { describe, expect, it } from 'vitest';

import { SseParser, type SseEvent } from '../../src/client/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';

failOnUnhandledErrorsAfterEach();

interface Parsed {
	events: SseEvent[];
	retries: number[];
	comments: string[];
	parser: SseParser;
}

function parse(chunks: Iterable<string | Uint8Array>, end = true): Parsed {
	const parsed: Parsed = {
		events: [],
		retries: [],
		comments: [],
		parser: new SseParser({
			onEvent: (event) => parsed.events.push(event),
			onRetry: (ms) => parsed.retries.push(ms),
			onComment: (comment) => parsed.comments.push(comment),
		}),
	};
	for (const chunk of chunks) parsed.parser.push(chunk);
	if (end) parsed.parser.end();
	return parsed;
}

// Every feature at once: a BOM, LF, CRLF and CR line endings, comments, multi-line data, ids
// (one with NUL, ignored), retry (one invalid), a field without colon, non-ASCII text in 2-, 3-
// and 4-byte UTF-8, an event without data, and an unterminated event at the end.
const sample =
	'\uFEFFretry: 1500\n' +
	': ping\r\n' +
	'id: 1\nevent: status\ndata: {"a":"café"}\n\n' +
	'id: 2\r\nevent: progress\r\ndata: line one\r\ndata:line two — ✓\r\ndata\r\n\r\n' +
	'id: 3\revent: status\rdata:  two spaces 🎬\r\r' +
	'id: 4\0x\ndata: nul id ignored\n\n' +
	'retry: 1x\nretry: -1\n\n' +
	'id: 5\n\n' +
	'data: plain message\nunknown: field\n\n' +
	':\n' +
	'id\ndata: id reset\n\n' +
	'id: 9\ndata: never dispatched';

const expected: SseEvent[] = [
	{ type: 'status', data: '{"a":"café"}', lastEventId: '1' },
	{ type: 'progress', data: 'line one\nline two — ✓\n', lastEventId: '2' },
	{ type: 'status', data: ' two spaces 🎬', lastEventId: '3' },
	{ type: 'message', data: 'nul id ignored', lastEventId: '3' },
	{ type: 'message', data: 'plain message', lastEventId: '5' },
	{ type: 'message', data: 'id reset', lastEventId: '' },
];

describe('SseParser', () => {
	it('parses every field and line ending of a whole stream', () => {
		const { events, retries, comments, parser } = parse([sample]);
		expect(events).toEqual(expected);
		expect(retries).toEqual([1500]);
		expect(comments).toEqual([' ping', '']);
		// The unterminated event was discarded, its id too.
		expect(parser.lastEventId).toBe('');
	});

	it('gives the same events for the bytes cut in two at every position, mid-line and mid-UTF-8 included', () => {
		const bytes = new TextEncoder().encode(sample);
		expect(bytes.length).toBeGreaterThan(sample.length); // multi-byte characters present
		for (let cut = 0; cut <= bytes.length; cut++) {
			const { events, retries } = parse([bytes.subarray(0, cut), bytes.subarray(cut)]);
			expect(events, `cut at byte ${cut}`).toEqual(expected);
			expect(retries).toEqual([1500]);
		}
	});

	it('gives the same events for the text cut in three at many positions, and byte by byte', () => {
		for (let a = 0; a <= sample.length; a += 3) {
			for (let b = a; b <= sample.length; b += 7) {
				const { events } = parse([sample.slice(0, a), sample.slice(a, b), sample.slice(b)]);
				expect(events, `cuts at ${a} and ${b}`).toEqual(expected);
			}
		}
		const bytes = new TextEncoder().encode(sample);
		expect(parse(Array.from(bytes, (byte) => Uint8Array.of(byte))).events).toEqual(expected);
		expect(parse(Array.from(sample)).events).toEqual(expected);
	});

	it('treats a CR at the end of a chunk and an LF at the start of the next as one line ending', () => {
		const { events } = parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
		expect(events).toEqual([{ type: 'message', data: 'a\nb', lastEventId: '' }]);
		// A lone CR followed by a chunk that does not start with LF ends the line by itself.
		expect(parse(['data: a\r', 'data: b\r', '\r']).events).toEqual([{ type: 'message', data: 'a\nb', lastEventId: '' }]);
	});

	it('drops only one BOM, only at the start of the stream', () => {
		expect(parse(['\uFEFF\uFEFFdata: x\n\ndata: y\n\n']).events).toEqual([{ type: 'message', data: 'y', lastEventId: '' }]);
		expect(parse(['data: \uFEFFx\n\n']).events).toEqual([{ type: 'message', data: '\uFEFFx', lastEventId: '' }]);
		// A BOM split across byte chunks.
		const bytes = new TextEncoder().encode('\uFEFFdata: z\n\n');
		expect(parse([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]).events).toEqual([
			{ type: 'message', data: 'z', lastEventId: '' },
		]);
	});

	it('keeps the last event id across events and streams, and dispatches nothing for an event without data', () => {
		const parsed = parse(['id: 7\n\n', 'data: a\n\n'], false);
		expect(parsed.events).toEqual([{ type: 'message', data: 'a', lastEventId: '7' }]);
		expect(parsed.parser.lastEventId).toBe('7');
		// end() discards the unterminated event; the next stream (a reconnection) keeps id 7.
		parsed.parser.push('id: 8\ndata: cut off');
		parsed.parser.end();
		parsed.parser.push('\uFEFFdata: b\n\n');
		expect(parsed.events.at(-1)).toEqual({ type: 'message', data: 'b', lastEventId: '7' });
	});

	it('turns invalid UTF-8 into U+FFFD instead of failing', () => {
		const { events } = parse([Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0x0a, 0x0a)]);
		expect(events).toEqual([{ type: 'message', data: '\uFFFD', lastEventId: '' }]);
	});

	it('handles a stream of many events in one chunk and in many', () => {
		const stream = Array.from({ length: 200 }, (_, i) => `id: ${i}\nevent: progress\ndata: ${i}\n\n`).join('');
		const whole = parse([stream]).events;
		expect(whole).toHaveLength(200);
		expect(whole[199]).toEqual({ type: 'progress', data: '199', lastEventId: '199' });
		const pieces: string[] = [];
		for (let i = 0; i < stream.length; i += 13) pieces.push(stream.slice(i, i + 13));
		expect(parse(pieces).events).toEqual(whole);
	});
});

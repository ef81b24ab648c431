/**
 * A streaming parser for `text/event-stream`, as the HTML standard's "event stream
 * interpretation" describes it (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 * - Lines end with CRLF, LF or CR; a CR at the end of one chunk and an LF at the start of the
 *   next are one line ending. Chunks may be cut anywhere: mid-line, mid-field, mid-UTF-8 sequence.
 * - One U+FEFF byte order mark at the start of the stream is dropped.
 * - `data:` lines are joined with LF; `event:` sets the type (default `message`); `id:` sets the
 *   last event id (kept across events; an id containing NUL is ignored); `retry:` with only ASCII
 *   digits sets the reconnection time; lines starting with `:` are comments; other fields are ignored.
 *   A single space after the colon is dropped from the value.
 * - A blank line dispatches the event; an event with no data is not dispatched (its `id:` still
 *   counts). An event not ended by a blank line when the stream ends is discarded.
 */

/** One dispatched event. */
export interface SseEvent {
	/** The `event:` field, or `'message'`. */
	readonly type: string;
	/** The `data:` lines joined with `\n`. */
	readonly data: string;
	/** The last event id as of this event: its own `id:` or the most recent one before it, `''` if none. */
	readonly lastEventId: string;
}

/** Callbacks of an {@link SseParser}. */
export interface SseParserHandlers {
	onEvent(event: SseEvent): void;
	/** A valid `retry:` field, in milliseconds. */
	onRetry?(ms: number): void;
	/** A comment line, without its leading colon (heartbeats such as `: ping` give `' ping'`). */
	onComment?(comment: string): void;
}

const LF = 10;
const CR = 13;

/** Parses an event stream fed in chunks of text or bytes (UTF-8). Synchronous: handlers run inside `push`. */
export class SseParser {
	readonly #handlers: SseParserHandlers;
	// Bytes are decoded with a streaming decoder that keeps a BOM, so that the parser drops it for text and bytes alike.
	readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
	#pending = '';
	#atStart = true;
	#skipLf = false;
	#data = '';
	#hasData = false;
	#type = '';
	#lastEventIdBuffer = '';
	#lastEventId = '';

	constructor(handlers: SseParserHandlers) {
		this.#handlers = handlers;
	}

	/** The last event id the stream has set, `''` before any. */
	get lastEventId(): string {
		return this.#lastEventId;
	}

	/** Feeds the next chunk: text, or UTF-8 bytes (a multi-byte character may be split across chunks). */
	push(chunk: string | Uint8Array): void {
		const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
		if (text.length === 0) return;
		let input = this.#pending + text;
		if (this.#atStart) {
			if (input.length === 0) return;
			this.#atStart = false;
			if (input.charCodeAt(0) === 0xfeff) input = input.slice(1);
		}

		let start = 0;
		if (this.#skipLf && input.charCodeAt(0) === LF) start = 1;
		this.#skipLf = false;
		for (let i = start; i < input.length; i++) {
			const code = input.charCodeAt(i);
			if (code !== LF && code !== CR) continue;
			this.#line(input.slice(start, i));
			if (code === CR) {
				if (i + 1 === input.length) this.#skipLf = true;
				else if (input.charCodeAt(i + 1) === LF) i++;
			}
			start = i + 1;
		}
		this.#pending = input.slice(start);
	}

	/**
	 * Ends the stream: flushes the decoder and discards an event that was not ended by a blank
	 * line, as the standard says. The parser can then take a new stream (a reconnection): the
	 * last event id is kept, a BOM is dropped again.
	 */
	end(): void {
		const rest = this.#decoder.decode();
		if (rest.length > 0) this.push(rest);
		this.#pending = '';
		this.#skipLf = false;
		this.#atStart = true;
		this.#data = '';
		this.#hasData = false;
		this.#type = '';
		this.#lastEventIdBuffer = this.#lastEventId;
	}

	#line(line: string): void {
		if (line.length === 0) {
			this.#dispatch();
			return;
		}
		const colon = line.indexOf(':');
		if (colon === 0) {
			this.#handlers.onComment?.(line.slice(1));
			return;
		}
		let field: string;
		let value: string;
		if (colon === -1) {
			field = line;
			value = '';
		} else {
			field = line.slice(0, colon);
			value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1);
		}
		switch (field) {
			case 'data':
				this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
				this.#hasData = true;
				break;
			case 'event':
				this.#type = value;
				break;
			case 'id':
				if (!value.includes('\0')) this.#lastEventIdBuffer = value;
				break;
			case 'retry':
				if (/^[0-9]+$/.test(value)) this.#handlers.onRetry?.(Number(value));
				break;
			default:
				// Unknown fields are ignored.
				break;
		}
	}

	#dispatch(): void {
		this.#lastEventId = this.#lastEventIdBuffer;
		if (!this.#hasData) {
			this.#type = '';
			return;
		}
		const event: SseEvent = { type: this.#type === '' ? 'message' : this.#type, data: this.#data, lastEventId: this.#lastEventId };
		this.#data = '';
		this.#hasData = false;
		this.#type = '';
		this.#handlers.onEvent(event);
	}
}

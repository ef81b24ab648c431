/**
 * Run ids: 20 URL-safe characters (the base64url alphabet) carrying 120 random bits, each
 * character made from 6 bits of one byte of a pooled `crypto.randomFillSync` buffer. The string is
 * built by one `String.fromCharCode` call: flat from the start (a `+=` loop leaves a rope that a
 * stored id keeps alive), and twice as fast as `Buffer#toString('base64url')` on a slice.
 */
import { randomFillSync } from 'node:crypto';

const ID_LENGTH = 20;
const POOL_BYTES = ID_LENGTH * 512;
// Character codes of the base64url alphabet: 64 of them, so `byte & 63` picks one uniformly.
const ALPHABET = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (character) => character.charCodeAt(0));

const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES;

const at = (index: number): number => ALPHABET[(pool[index] as number) & 63] as number;

export function generateRunId(): string {
	if (offset === POOL_BYTES) {
		randomFillSync(pool);
		offset = 0;
	}

	const o = offset;
	offset += ID_LENGTH;
	return String.fromCharCode(
		at(o), at(o + 1), at(o + 2), at(o + 3), at(o + 4), at(o + 5), at(o + 6), at(o + 7), at(o + 8), at(o + 9),
		at(o + 10), at(o + 11), at(o + 12), at(o + 13), at(o + 14), at(o + 15), at(o + 16), at(o + 17), at(o + 18), at(o + 19),
	);
}

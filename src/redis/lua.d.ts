// Lua scripts are imported as text: tsup/esbuild (`loader: { '.lua': 'text' }`), vitest (a plugin in
// vitest.config.ts) and tsx (`--import ./scripts/lua-hooks.mjs`) all turn `import source from './x.lua'` into a string.
declare module '*.lua' {
	const source: string;
	export default source;
}

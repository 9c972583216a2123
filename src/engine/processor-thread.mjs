// A worker thread of a threaded processor: imports the user's processor module once and
// processes slices of a chunk. Each item's result or error comes back separately, so the
// chunk step can apply its skip policy per item. Plain JavaScript: it is the thread's entry.
const loaded = new Map();
let tsLoader;

async function load(module, exportName) {
  const key = `${module}#${exportName}`;
  let fn = loaded.get(key);
  if (!fn) {
    // TypeScript processor modules load through tsx here too (hooks are per thread).
    if (/\.[cm]?ts$/.test(module)) tsLoader ??= import('tsx/esm/api').then(({ register }) => register());
    await tsLoader;
    const mod = await import(module);
    fn = mod[exportName];
    if (typeof fn !== 'function') throw new TypeError(`${module} does not export a function named ${exportName}`);
    loaded.set(key, fn);
  }
  return fn;
}

export default async function processSlice({ module, exportName, items }) {
  const fn = await load(module, exportName);
  const results = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    try {
      results[i] = { ok: true, value: await fn(items[i]) };
    } catch (err) {
      results[i] = { ok: false, name: err?.name ?? 'Error', message: err?.message ?? String(err) };
    }
  }
  return results;
}

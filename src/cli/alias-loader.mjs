// Resolves `nightshift` to this package wherever the importing config file lives, so a config
// outside the package uses the same module instances as the CLI that loads it.
const index = new URL('../index.ts', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'nightshift') return { url: index, shortCircuit: true, format: 'module' };
  return nextResolve(specifier, context);
}

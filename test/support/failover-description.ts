/** Matching the description of an execution failed because its node was lost or died. */

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The description names exactly this node: "node NAME lost…" or "node NAME died…", where NAME is
 * the whole name (node "a" does not match "node ab died", nor does a bare "died").
 */
export function lostNodePattern(name: string): RegExp {
  return new RegExp(`(?:^|[\\s:;,(])node ${escapeRegExp(name)} (?:lost|died)\\b`);
}

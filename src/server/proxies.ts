import { BlockList, isIP } from 'node:net';
import { UsageError } from '../core/errors.ts';

/**
 * Which peers are the reverse proxy whose `X-Forwarded-For` (and `-Proto`) the server believes:
 * `true` any peer, a list only peers at these addresses (`10.0.0.7`, `::1`) or in these subnets
 * (`10.0.0.0/8`, `fd00::/8`). A client that reaches the server directly, past the proxy, writes
 * those headers itself: only a list keeps it from choosing its own address.
 */
export type TrustedProxies = boolean | readonly string[];

/** The loopback addresses: a proxy on this machine. */
export const LOOPBACK_PROXIES: readonly string[] = ['127.0.0.0/8', '::1'];

/**
 * Fastify's `trustProxy` for these proxies: one hop (the proxy in front, which appends the
 * client's address to X-Forwarded-For), and only when the peer is one of them. A bad entry is a
 * UsageError naming it.
 */
export function trustProxyOption(proxies: TrustedProxies | undefined): boolean | ((address: string, hop: number) => boolean) {
  if (!proxies) return false;
  // Trusting every hop would take the leftmost entry, which the client writes itself.
  if (proxies === true) return (_address, hop) => hop < 1;
  const list = new BlockList();
  for (const raw of proxies) {
    const entry = raw.trim();
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!family || extra !== undefined || !(prefix >= 0 && prefix <= (family === 6 ? 128 : 32))) {
      throw new UsageError(`trusted proxy ${JSON.stringify(entry.slice(0, 64))} is not an IP address or subnet (10.0.0.7, 10.0.0.0/8, ::1, fd00::/8)`);
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  if (proxies.length === 0) throw new UsageError('the list of trusted proxies is empty: name their addresses (10.0.0.7, 10.0.0.0/8)');
  return (address, hop) => {
    if (hop >= 1) return false;
    // A dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d.
    const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1];
    if (v4) return list.check(v4, 'ipv4');
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

// Compiled by test/unit/types.test.ts: an event map types what is published; the default stays untyped.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type EventOf, EventStream, getEventStreamSingleton } from '../../src/index.js';

interface ShopEvents {
  message: string;
  price: { symbol: string; value: number };
  sold: { symbol: string };
}

const shop = new EventStream<ShopEvents>();
await shop.publishEvent('prices', { event: 'price', data: { symbol: 'ACME', value: 12 } });
await shop.publishEvent('prices', { data: 'plain message' });
await shop.publishEvent('prices', { event: 'message', data: 'named message', retry: 1000 });
await shop.getChannelPublisher('prices').publishEvent({ event: 'sold', data: { symbol: 'ACME' } });

const writable = shop.createChannelWritable('prices');
writable.write({ event: 'price', data: { symbol: 'ACME', value: 13 } });
writable.end({ event: 'sold', data: { symbol: 'ACME' } });
const events: Array<EventOf<ShopEvents>> = [{ event: 'sold', data: { symbol: 'X' } }];
await pipeline(Readable.from(events), shop.createChannelWritable('prices'));
await pipeline(Readable.from(events), shop.getChannelPublisher('prices').createWritable());

// @ts-expect-error price data must be { symbol, value }
await shop.publishEvent('prices', { event: 'price', data: { symbol: 'ACME' } });
// @ts-expect-error no such event in the map
await shop.publishEvent('prices', { event: 'refund', data: {} });
// @ts-expect-error a message carries a string
await shop.publishEvent('prices', { data: 42 });
// @ts-expect-error events need their name unless they are messages
await shop.publishEvent('prices', { data: { symbol: 'ACME' } });
// @ts-expect-error the writable checks each event too
writable.write({ event: 'price', data: 'cheap' });
// @ts-expect-error a channel writable takes events, not bytes
writable.write('raw bytes');
// @ts-expect-error so does end()
writable.end({ event: 'sold', data: 1 });
// @ts-expect-error and a channel publisher
await shop.getChannelPublisher('prices').publishEvent({ event: 'sold', data: { value: 1 } });
// @ts-expect-error ids are the library's
await shop.publishEvent('prices', { event: 'sold', data: { symbol: 'A' }, id: '7' });

// Untyped by default: any name, any data.
const untyped = new EventStream();
await untyped.publishEvent('any', { event: 'whatever', data: { anything: [1, 2, 3] } });
await untyped.publishEvent('any', { data: 42 });
untyped.createChannelWritable('any').write({ event: 'x', data: null });
await getEventStreamSingleton().publishEvent('any', { data: 'singleton' });
// @ts-expect-error even untyped, an event needs data
await untyped.publishEvent('any', { event: 'x' });

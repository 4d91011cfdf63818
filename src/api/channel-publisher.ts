import type { Writable } from 'node:stream';
import type { ServerSentEvent } from '../event-types.js';

interface PublishTarget {
  publishEvent(channel: string, event: ServerSentEvent): Promise<void>;
  createChannelWritable(channel: string): Writable;
}

/** Publishing bound to one channel; holds nothing but the name, so keeping many costs nothing. */
export class ChannelPublisher {
  readonly channel: string;
  private readonly target: PublishTarget;

  constructor(target: PublishTarget, channel: string) {
    this.target = target;
    this.channel = channel;
  }

  publishEvent(event: ServerSentEvent): Promise<void> {
    return this.target.publishEvent(this.channel, event);
  }

  createWritable(): Writable {
    return this.target.createChannelWritable(this.channel);
  }
}

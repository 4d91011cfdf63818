import type { ChannelEventWritable, ServerSentEvent } from '../types.js';

interface PublishTarget<TEvent> {
  publishEvent(channel: string, event: TEvent): Promise<void>;
  createChannelWritable(channel: string): ChannelEventWritable<TEvent>;
}

/** Publishing bound to one channel; holds nothing but the name, so keeping many costs nothing. */
export class ChannelPublisher<TEvent = ServerSentEvent> {
  readonly channel: string;
  private readonly target: PublishTarget<TEvent>;

  constructor(target: PublishTarget<TEvent>, channel: string) {
    this.target = target;
    this.channel = channel;
  }

  publishEvent(event: TEvent): Promise<void> {
    return this.target.publishEvent(this.channel, event);
  }

  createWritable(): ChannelEventWritable<TEvent> {
    return this.target.createChannelWritable(this.channel);
  }
}

import { getEventStreamSingleton } from '@fanoutio/eventstream';
export const CHANNEL_NAME = 'test';
export const eventStream = getEventStreamSingleton();

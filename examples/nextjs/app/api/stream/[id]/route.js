// App router: GET /api/stream/<id> streams the channel <id> ({id} is filled from the route's params).
import { eventStream } from '../../../../lib/eventStream';

export const dynamic = 'force-dynamic';
export const GET = eventStream.fetchHandler('{id}');

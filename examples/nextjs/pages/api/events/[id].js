// Pages router: GET /api/events/<id> streams the channel <id> ({id} is filled from req.query).
import { eventStream } from '../../../lib/eventStream';

export default eventStream('{id}');

// Next.js counts what an API route writes and warns when a response that ends has sent over
// 4 MB in all; an event stream can pass that over its life (the warning would then show when
// the server ends it, e.g. on eventStream.close()). Nothing is buffered either way.
export const config = { api: { responseLimit: false } };

// GET /api/stats: channels and their subscriber counts, open streams, events published.
import { eventStream } from '../../../lib/eventStream';

export const dynamic = 'force-dynamic';

export function GET() {
  return Response.json(eventStream.stats());
}

// POST /api/publish/<id> with a JSON body {"data": ...} publishes {event: 'message', data} on the channel <id>.
import { eventStream } from '../../../../lib/eventStream';

export async function POST(request, { params }) {
  const { id } = await params;
  let body;
  try {
    body = await request.json();
  } catch {
    return Response.json({ error: 'the body must be JSON: {"data": ...}' }, { status: 400 });
  }
  try {
    await eventStream.publishEvent(id, { event: 'message', data: body?.data });
  } catch (error) {
    // InvalidChannelError and InvalidEventError (a bad channel name, missing data) are TypeErrors.
    if (error instanceof TypeError) return Response.json({ error: error.message }, { status: 400 });
    throw error;
  }
  return new Response(null, { status: 204 });
}

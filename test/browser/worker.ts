/** The workerd worker: POST /run/<case name> with the fixtures as JSON answers the case's outcome. */
import { run } from './entry.js';

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== 'POST' || !url.pathname.startsWith('/run/')) return new Response('not found', { status: 404 });
    const outcome = await run(decodeURIComponent(url.pathname.slice(5)), await request.json());
    return Response.json(outcome);
  },
};

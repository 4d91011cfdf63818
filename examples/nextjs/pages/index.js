import { useEffect, useRef, useState } from 'react';

const ROUTES = {
  pages: '/api/events/', // pages router: pages/api/events/[id].js
  app: '/api/stream/', // app router: app/api/stream/[id]/route.js
};

export default function Home() {
  const [channel, setChannel] = useState('test');
  const [route, setRoute] = useState('pages');
  const [status, setStatus] = useState('connecting');
  const [messages, setMessages] = useState([]);
  const [text, setText] = useState('');
  // Keys that stay with their message when the list drops its oldest.
  const received = useRef(0);

  useEffect(() => {
    if (channel === '') return undefined;
    const source = new EventSource(ROUTES[route] + encodeURIComponent(channel));
    setStatus('connecting');
    source.addEventListener('stream-open', () => setStatus('open'));
    source.addEventListener('message', (event) => {
      const key = received.current++;
      setMessages((list) => [...list, { key, message: JSON.parse(event.data) }].slice(-50));
    });
    source.addEventListener('error', () => setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
    return () => source.close();
  }, [channel, route]);

  async function publish(event) {
    event.preventDefault();
    const response = await fetch(`/api/publish/${encodeURIComponent(channel)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: { text } }),
    });
    if (response.ok) setText('');
    else setStatus(`publish failed: ${(await response.json()).error}`);
  }

  return (
    <main style={{ fontFamily: 'sans-serif', maxWidth: 640, margin: '2rem auto' }}>
      <h1>EventStream + Next.js</h1>
      <p>
        Channel <input value={channel} onChange={(e) => setChannel(e.target.value)} size={16} /> via{' '}
        <select value={route} onChange={(e) => setRoute(e.target.value)}>
          <option value="pages">pages router ({ROUTES.pages}…)</option>
          <option value="app">app router ({ROUTES.app}…)</option>
        </select>{' '}
        <span id="status">{status}</span>
      </p>
      <form onSubmit={publish}>
        <input value={text} onChange={(e) => setText(e.target.value)} placeholder="message" />{' '}
        <button type="submit">Publish</button>
      </form>
      <ul id="messages">
        {messages.map(({ key, message }) => (
          <li key={key}>{typeof message?.text === 'string' ? message.text : JSON.stringify(message)}</li>
        ))}
      </ul>
    </main>
  );
}

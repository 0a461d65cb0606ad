// Docker log streams to lines: frames of a multiplexed stream (8-byte header: stream, 0, 0, 0,
// length) are split as they arrive, stdout and stderr each keeping their own partial line. Lines
// go to a callback rather than through an async iterator: a log has hundreds of thousands of them.
import { StringDecoder } from 'node:string_decoder';

interface Channel {
  decoder: StringDecoder;
  partial: string;
}

/** Calls `onLine` for every line of a Docker log stream, in the order the engine sent them. */
export async function forEachDockerLogLine(stream: AsyncIterable<Buffer | string>, onLine: (line: string) => void): Promise<void> {
  const channels = new Map<number, Channel>();
  const feed = (n: number, bytes: Buffer) => {
    let c = channels.get(n);
    if (!c) {
      c = { decoder: new StringDecoder('utf8'), partial: '' };
      channels.set(n, c);
    }
    const text = c.partial + c.decoder.write(bytes);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      onLine(text.slice(from, nl));
      from = nl + 1;
    }
    c.partial = text.slice(from);
  };

  let mode: 'unknown' | 'mux' | 'raw' = 'unknown';
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    pending = pending.length ? Buffer.concat([pending, buf]) : buf;
    if (mode === 'unknown') {
      if (pending.length < 8) continue;
      // A TTY container's log is raw bytes; a multiplexed one starts with a frame header.
      mode = pending[0]! <= 2 && pending[1] === 0 && pending[2] === 0 && pending[3] === 0 ? 'mux' : 'raw';
    }
    if (mode === 'raw') {
      feed(1, pending);
      pending = Buffer.alloc(0);
      continue;
    }
    let i = 0;
    while (i + 8 <= pending.length) {
      const len = pending.readUInt32BE(i + 4);
      if (i + 8 + len > pending.length) break;
      feed(pending[i]!, pending.subarray(i + 8, i + 8 + len));
      i += 8 + len;
    }
    pending = i === pending.length ? Buffer.alloc(0) : pending.subarray(i);
  }
  if (mode !== 'mux' && pending.length) feed(1, pending);
  for (const c of channels.values()) {
    const rest = c.partial + c.decoder.end();
    if (rest) onLine(rest);
  }
}

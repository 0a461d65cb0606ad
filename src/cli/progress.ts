// Progress of long steps (pulls, health waits): one live line per environment on a TTY,
// plain timestamped lines otherwise, so logs and CI output stay readable.

export interface Progress {
  update(env: string, message: string): void;
  /** writes a full line (a log line) without garbling the live line */
  log(line: string): void;
}

export function createProgress(stream: NodeJS.WritableStream, isTTY: boolean): Progress {
  let live = false;
  const clear = () => {
    if (live) stream.write('\r\x1b[K');
    live = false;
  };
  return {
    update(env, message) {
      if (isTTY) {
        const cols = (stream as { columns?: number }).columns ?? 100;
        clear();
        stream.write(`${env}: ${message}`.slice(0, cols - 1));
        live = true;
      } else {
        stream.write(`progress ${env}: ${message}\n`);
      }
    },
    log(line) {
      clear();
      stream.write(line + '\n');
    },
  };
}

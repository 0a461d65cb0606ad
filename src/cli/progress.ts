// Progress of long steps (pulls, backups, restores, health waits): on a TTY one live line rewritten
// in place, at most ten times a second and cut to the terminal's width; otherwise plain lines, so
// logs and CI output stay readable.

export interface Progress {
  update(env: string, message: string): void;
  /** writes a full line (a log line) without garbling the live line */
  log(line: string): void;
  /** clears the live line for good, before a result or an error takes the terminal */
  end(): void;
}

export interface ProgressOptions {
  /** shortest time between two drawings of the live line */
  frameMs?: number;
  now?: () => number;
}

const FRAME_MS = 100;
/** what a terminal that reports no size (a pseudo-terminal nobody sized) is taken to be */
const FALLBACK_COLUMNS = 80;
const CLEAR_LINE = '\r\x1b[K';

/** One line of text: control characters (a newline in a message) would break the live line. */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ');
}

export function createProgress(stream: NodeJS.WritableStream, isTTY: boolean, opts: ProgressOptions = {}): Progress {
  if (!isTTY) {
    return {
      update: (env, message) => void stream.write(`progress ${env}: ${oneLine(message)}\n`),
      log: (line) => void stream.write(line + '\n'),
      end: () => undefined,
    };
  }
  const frameMs = opts.frameMs ?? FRAME_MS;
  const now = opts.now ?? (() => performance.now());
  let current: string | null = null;
  let onScreen = false;
  let lastDraw = -Infinity;
  let timer: NodeJS.Timeout | undefined;

  const fit = (text: string): string => {
    const columns = (stream as { columns?: number }).columns;
    // The last column is left free: writing into it makes some terminals wrap the line.
    const max = (columns && columns > 1 ? columns : FALLBACK_COLUMNS) - 1;
    const chars = [...text];
    return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
  };
  const draw = () => {
    clearTimeout(timer);
    timer = undefined;
    if (current === null) return;
    stream.write(CLEAR_LINE + fit(current));
    onScreen = true;
    lastDraw = now();
  };
  const clear = () => {
    if (onScreen) stream.write(CLEAR_LINE);
    onScreen = false;
  };
  return {
    update(env, message) {
      current = `${env}: ${oneLine(message)}`;
      const wait = lastDraw + frameMs - now();
      if (wait <= 0) draw();
      // The newest message is drawn when the frame is over; the timer never keeps the process alive.
      else timer ??= setTimeout(draw, wait).unref();
    },
    log(line) {
      clear();
      stream.write(line + '\n');
      if (current !== null) draw();
    },
    end() {
      clearTimeout(timer);
      timer = undefined;
      clear();
      current = null;
    },
  };
}

import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';

/** One message an SMTP test server accepted. */
export interface ReceivedMail {
  /** MAIL FROM. */
  from: string;
  /** RCPT TO that were accepted (the envelope, bcc included). */
  to: string[];
  /** The message as sent after DATA (RFC 5322, CRLF line ends). */
  raw: string;
  /** The authenticated user, if any. */
  user: string | undefined;
}

export interface FakeSmtpServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly mails: ReceivedMail[];
  /** MAIL FROM commands seen (accepted or not): what a preview must not cause. */
  readonly transactions: () => number;
  /** TCP connections opened so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

/** An SMTP reply for a refusal: [code, text], e.g. [451, '4.3.0 try again later']. */
export type SmtpReply = [number, string];

export interface FakeSmtpOptions {
  /** Refuse RCPT TO for some addresses. */
  rcpt?: (address: string) => SmtpReply | undefined;
  /** Refuse the message after DATA. */
  data?: () => SmtpReply | undefined;
  /** Require AUTH (PLAIN/LOGIN over plain text) with these credentials. */
  auth?: { user: string; pass: string };
}

function smtpError([code, text]: SmtpReply): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

/**
 * A real SMTP server (the `smtp-server` package) on 127.0.0.1, without STARTTLS, that keeps the
 * messages it accepts. For provider tests: no mocks, the client speaks real SMTP.
 */
export async function startSmtpServer(options: FakeSmtpOptions = {}): Promise<FakeSmtpServer> {
  const mails: ReceivedMail[] = [];
  let transactions = 0;
  let connections = 0;
  const auth = options.auth;
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 500,
    disabledCommands: auth === undefined ? ['STARTTLS', 'AUTH'] : ['STARTTLS'],
    authOptional: auth === undefined,
    allowInsecureAuth: true,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(login, _session, callback) {
      if (auth !== undefined && login.username === auth.user && login.password === auth.pass) {
        callback(null, { user: login.username });
      } else {
        callback(smtpError([535, '5.7.8 authentication failed']));
      }
    },
    onMailFrom(_address, _session, callback) {
      transactions++;
      callback();
    },
    onRcptTo(address, _session, callback) {
      const refusal = options.rcpt?.(address.address);
      callback(refusal === undefined ? null : smtpError(refusal));
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const refusal = options.data?.();
        if (refusal !== undefined) return callback(smtpError(refusal));
        const mailFrom = session.envelope.mailFrom;
        mails.push({
          from: mailFrom === false ? '' : mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const { port } = server.server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    mails,
    transactions: () => transactions,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface SilentServer {
  readonly port: number;
  readonly connections: () => number;
  /** Connections still open. */
  readonly open: () => number;
  close(): Promise<void>;
}

/** Accepts TCP connections and never says a word (no SMTP greeting): the hang case. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    connections: () => connections,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The value of a header of a raw message (first occurrence, unfolded), or undefined. */
export function header(raw: string, name: string): string | undefined {
  const head = raw.split('\r\n\r\n', 1)[0] ?? '';
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  const wanted = name.toLowerCase();
  for (const line of unfolded.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).toLowerCase() === wanted) {
      return line.slice(colon + 1).trim();
    }
  }
  return undefined;
}

/**
 * The decoded body of the first MIME part (or the single body) with this content type, for
 * 7bit/8bit/quoted-printable/base64 parts. Enough for tests; not a MIME parser.
 */
export function part(raw: string, contentType: string): string | undefined {
  const blocks = raw.split(/\r\n--[^\r\n]+\r\n/);
  for (const block of [raw, ...blocks]) {
    const [head, ...rest] = block.split('\r\n\r\n');
    if (head === undefined || rest.length === 0) continue;
    const type = header(`${head}\r\n\r\n`, 'content-type') ?? '';
    if (!type.toLowerCase().startsWith(contentType)) continue;
    let body = rest.join('\r\n\r\n').replace(/\r\n--[^\r\n]*--\r\n?$/, '');
    body = body.replace(/\r\n$/, '');
    const encoding = (header(`${head}\r\n\r\n`, 'content-transfer-encoding') ?? '').toLowerCase();
    if (encoding === 'base64') return Buffer.from(body, 'base64').toString('utf8');
    if (encoding === 'quoted-printable') {
      const bytes = body
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    }
    return body;
  }
  return undefined;
}

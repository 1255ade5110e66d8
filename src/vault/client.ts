import { setTimeout as sleep } from 'node:timers/promises';
import { VaultrunError } from '../errors.js';
import { type Logger, MASK, type Masker, sanitizeServerText } from '../log.js';
import { addressCredentials, displayAddress } from './address.js';
import {
  isBehindIndex,
  isKvUpgrading,
  laterIndex,
  leaderOrigin,
  parseIndex,
  type VaultIndex,
  VersionFloor,
} from './consistency.js';
import { Deadline, secondsText } from './deadline.js';
import {
  ANSWER_TOO_LARGE,
  createTransport,
  isTlsFailure,
  MAX_ANSWER_TEXT,
  type TlsSettings,
  TransportError,
  type TransportRequest,
  tlsAdvice,
} from './transport.js';

/**
 * The one Vault client: one generic request over our transport, and around it retries with backoff and
 * jitter, bounded concurrency, namespaces and errors that never carry a token (nor a piece of one).
 *
 * Requests do not go through node-vault: its `request()` treats any failed answer to a path containing
 * "sys/health" as a success (so a denied read would look like an empty secret, "missing" instead of
 * "denied"), rewrites `&#x2F;` in paths to '/', and takes a token, namespace and path prefix from the
 * environment. Here every path gets the same treatment: 200 and 204 are answers, every other status is an
 * error classified by its status alone, and the URL requested is exactly the path given (see send()).
 */
export interface ClientSettings {
  addr: string;
  namespace?: string;
  tls: TlsSettings;
  /** One HTTP request at most (connection, headers and body), bounded by what is left of the deadline. */
  timeoutMs: number;
  /** How long to keep retrying an unreachable, sealed, standby or rate-limiting Vault. */
  waitMs: number;
  concurrency: number;
  /**
   * How reads stay consistent across the nodes of a cluster (docs/ha.md): `index` sends back the highest
   * X-Vault-Index seen (a node behind it refuses, and we retry); `forward` also asks such a node to forward the
   * request to the active node; `leader` sends every request to the active node (sys/leader), when its address
   * is allowed; `eventual` sends nothing. In every mode a KV v2 version older than one seen is never accepted.
   */
  consistency?: Consistency;
  /** Origins besides `addr` that `--consistency leader` may send requests (and the token) to. */
  clusterAddrs?: readonly string[];
  /** `addr` is the default: neither VAULT_ADDR / BAO_ADDR nor --addr was given (said in errors). */
  addrIsDefault?: boolean;
}

/** Pure: what to do when Vault stayed unavailable until --wait ran out, from the last reason seen. */
export function unavailableHint(reason: string, addrIsDefault: boolean): string {
  const more = 'raise --wait to wait longer';
  if (addrIsDefault)
    return "set VAULT_ADDR (or --addr) to your Vault's address, e.g. https://vault.example.com:8200";
  if (/\bsealed\b/i.test(reason)) return `Vault is sealed: unseal it (vault operator unseal); ${more}`;
  if (/not initiali[sz]ed/i.test(reason))
    return `Vault is not initialised: vault operator init, then unseal it; ${more}`;
  if (/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)\b/.test(reason))
    return `nothing answered at VAULT_ADDR: check its host and port, and that Vault is running; ${more}`;
  return `check VAULT_ADDR, the network, and that Vault is unsealed and active; ${more}`;
}

export type Consistency = 'index' | 'forward' | 'leader' | 'eventual';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

export interface RequestOptions {
  body?: unknown;
  /** X-Vault-Token for this request; none for logins. */
  token?: string;
  /** Extra headers, e.g. X-Vault-Wrap-TTL. */
  headers?: Record<string, string>;
  /** What we were doing, for messages: "reading secret/dify/db". */
  what: string;
  /** How long to retry this request (default: the client's --wait); never past the client's `deadline`. */
  waitMs?: number;
  /**
   * Checks a successful answer: a reason to ask again (within the same deadline, as for a retryable status),
   * e.g. a KV version older than one already seen, or undefined to accept it.
   */
  stale?: (body: unknown) => string | undefined;
}

/** A non-success answer, as classify() reads it. */
export class ApiResponseError extends Error {
  readonly response: { statusCode: number; body: unknown };
  constructor(statusCode: number, body: unknown) {
    super(`HTTP ${statusCode}`);
    this.name = 'ApiResponseError';
    this.response = { statusCode, body };
  }
}

/**
 * Pure: the URL of an API request. `path` is already encoded (refs/path.ts encodes reference paths); the URL
 * parser must leave it exactly as it is — no dot segment resolved, no backslash turned into '/', no '?' or '#'
 * starting a query or fragment we did not write — or the request is refused.
 */
export function requestUrl(addr: string, path: string): URL {
  const base = addr.replace(/\/+$/, '');
  const [pathPart = '', ...rest] = path.replace(/^\/+/, '').split('?');
  const query = rest.join('?');
  const url = new URL(`${base}/v1/${pathPart}${query ? `?${query}` : ''}`);
  const basePath = new URL(base).pathname.replace(/\/+$/, '');
  if (
    url.pathname !== `${basePath}/v1/${pathPart}` ||
    url.search !== (query ? `?${query}` : '') ||
    url.hash !== '' ||
    !/^[A-Za-z0-9=&_]*$/.test(query)
  ) {
    throw new VaultrunError('INTERNAL', 'refusing a request whose URL would differ from its path');
  }
  return url;
}

/** One request, one answer: 200 and 204 resolve with the body, any other status rejects. */
async function send(
  transport: ReturnType<typeof createTransport>,
  settings: ClientSettings,
  base: string,
  req: { path: string } & TransportRequest,
): Promise<unknown> {
  req.uri = requestUrl(base, req.path).href;
  if (settings.namespace) req.headers = { ...req.headers, 'X-Vault-Namespace': settings.namespace };
  const response = await transport(req);
  if (response.statusCode === 200 || response.statusCode === 204) return response.body;
  throw new ApiResponseError(response.statusCode, response.body);
}

const RETRY_STATUSES = new Set([412, 429, 472, 473, 500, 502, 503, 504]);
/**
 * A standby that cannot forward a request to the active node (during an election, or with the active node
 * gone) answers 307 with the active node's address in Location. Redirects are never followed (the token
 * would go wherever the answer says); the request is retried at the configured address instead.
 */
const STANDBY_REDIRECT = 307;
const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

/** How much of each server message we show, and of how many. */
const MESSAGE_CHARS = 200;
const MESSAGES = 3;

/**
 * The `errors` of a failed answer, safe to print: a server (or a proxy) may echo our request — the token
 * header, a login body with role_id and secret_id — in its message. Each message is cleaned of escape
 * sequences and control characters, then every word holding a piece of a value the masker knows (6
 * characters or more of a credential) is masked, and only then cut to length: cutting first would leave a
 * prefix of a credential that no longer matches it whole.
 */
export function vaultMessages(body: unknown, masker: Masker): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return '';
  return errors
    .slice(0, MESSAGES)
    .map((e) => truncate(masker.maskUntrusted(sanitizeServerText(String(e).slice(0, 64 * 1024)))))
    .filter((e) => e !== '')
    .join('; ');
}

/** Cuts at MESSAGE_CHARS, never inside the mask marker (a cut marker would look like text of the server). */
function truncate(text: string): string {
  if (text.length <= MESSAGE_CHARS) return text;
  let cut = MESSAGE_CHARS;
  const marker = text.lastIndexOf(MASK, cut);
  if (marker >= 0 && marker + MASK.length > cut) cut = marker;
  return `${text.slice(0, cut)}…`;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  // An HTTP date starts with the day's name; Date.parse alone takes junk such as "1.5" or "-1" for a date
  // in the past, i.e. "retry at once", which would turn the retry loop into a busy loop.
  if (!/^\s*(Mon|Tue|Wed|Thu|Fri|Sat|Sun)/i.test(header)) return undefined;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Pure: whether a failed attempt only says that the deadline ran out, so that the reason of the attempt before it
 * (e.g. "HTTP 503 (Vault is sealed)") is the one to report: a time-out of a retry that had less than the client
 * timeout, or that found no time left at all (`attemptTimeoutMs` 0: the last sleep ended a moment before the
 * deadline, or waiting for a free slot used it up). A first attempt has no reason before it to report instead.
 */
export function cutByDeadline(
  attempt: number,
  attemptTimeoutMs: number | undefined,
  clientTimeoutMs: number,
  error: unknown,
): boolean {
  return (
    attempt > 0 &&
    attemptTimeoutMs !== undefined &&
    attemptTimeoutMs < clientTimeoutMs &&
    error instanceof TransportError &&
    error.code === 'ETIMEDOUT'
  );
}

/** Full jitter: a random delay up to the exponential step (AWS architecture blog's recommendation). */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return Math.max(50, Math.floor(random() * step));
}

export class VaultClient {
  readonly settings: ClientSettings;
  private readonly log: Logger;
  private readonly transport: ReturnType<typeof createTransport>;
  private active = 0;
  private readonly queue: Array<() => void> = [];
  /** Requests sent to Vault (retries included): for the summary and for tests. */
  requests = 0;
  /**
   * While set, no request (retries and waits included) goes on past it: a start sets its --wait deadline here
   * for the login, the mount lookups and the reads together, and clears it once the start is over.
   */
  deadline: Deadline | undefined;
  /** The newest KV v2 version seen per path in this run: never go back below it. */
  readonly versions = new VersionFloor();
  /** The highest X-Vault-Index seen (modes index, forward, leader). */
  private index: VaultIndex | undefined;
  /** --consistency leader: the active node's origin, once asked (undefined: ask sys/leader again). */
  private leaderBase: string | undefined;
  private leaderWarned = false;

  static async create(settings: ClientSettings, log: Logger): Promise<VaultClient> {
    return new VaultClient(settings, log);
  }

  private constructor(settings: ClientSettings, log: Logger) {
    this.settings = settings;
    this.log = log;
    // A password in the address goes out as a Basic header: masked like a token, in every form (address.ts).
    for (const value of addressCredentials(settings.addr)) log.masker.add(value);
    this.transport = createTransport({
      tls: settings.tls,
      timeoutMs: settings.timeoutMs,
      maxSockets: settings.concurrency,
    });
  }

  close(): void {
    this.transport.close();
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.settings.concurrency) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  /**
   * One attempt, in a concurrency slot, its timeout bounded by what is left of `budget` (measured once a slot is
   * free: waiting for one counts against the deadline too).
   */
  private sendWithin(
    budget: Deadline,
    base: string,
    req: { path: string } & TransportRequest,
  ): Promise<unknown> {
    return this.slot(() => {
      const timeoutMs = Math.min(this.settings.timeoutMs, budget.remainingMs());
      // Recorded even when nothing is sent: an attempt that found no time left was cut by the deadline too.
      req.timeoutMs = Math.max(0, timeoutMs);
      if (timeoutMs <= 0) {
        return Promise.reject(new TransportError('ETIMEDOUT', 'no time left to send the request'));
      }
      this.requests++;
      return send(this.transport, this.settings, base, req);
    });
  }

  /** One API call with retries. Resolves with the parsed JSON body (undefined for 204). */
  async request<T = unknown>(method: Method, path: string, options: RequestOptions): Promise<T> {
    const budget = Deadline.earliest(new Deadline(options.waitMs ?? this.settings.waitMs), this.deadline);
    const mode = this.settings.consistency ?? 'index';
    let retryable: { reason: string; status?: number } = { reason: 'no request was sent' };
    for (let attempt = 0; budget.remainingMs() > 0; attempt++) {
      const index = mode === 'eventual' ? undefined : this.index;
      const req: { path: string } & TransportRequest = {
        path,
        uri: '',
        method,
        headers: {
          ...options.headers,
          ...(index ? { 'X-Vault-Index': index.raw } : {}),
          ...(index && mode === 'forward' ? { 'X-Vault-Inconsistent': 'forward-active-node' } : {}),
          ...(options.token ? { 'X-Vault-Token': options.token } : {}),
        },
        ...(options.body === undefined ? {} : { json: options.body }),
      };
      const base = mode === 'leader' ? await this.leader(budget) : this.settings.addr;
      try {
        const body = await this.sendWithin(budget, base, req);
        if (mode !== 'eventual') this.index = laterIndex(this.index, parseIndex(req.vaultIndex));
        const stale = options.stale?.(body);
        if (stale === undefined) return body as T;
        retryable = { reason: stale };
      } catch (error) {
        const outcome = this.classify(error, options.what, index !== undefined, `${method} ${path}`);
        if (!cutByDeadline(attempt, req.timeoutMs, this.settings.timeoutMs, error)) retryable = outcome;
        // The active node went away (or stepped down): ask sys/leader again at the next attempt.
        if (base !== this.settings.addr && (outcome.status === undefined || outcome.status >= 429))
          this.leaderBase = undefined;
      }
      // Retry-After is a floor (never a tight loop on "0" or a past date); a long one is capped; and no wait
      // goes past the deadline: once it is reached, we give up.
      const wait = Math.min(
        Math.max(retryAfterMs(req.retryAfter) ?? 0, backoffMs(attempt)),
        MAX_DELAY_MS * 2,
        budget.remainingMs(),
      );
      if (wait <= 0) break;
      this.log.debug('retrying Vault request', {
        what: options.what,
        reason: retryable.reason,
        delay_ms: Math.round(wait),
      });
      await sleep(wait);
    }
    const where = this.settings.addrIsDefault
      ? `${this.settings.addr} (the default: VAULT_ADDR is not set)`
      : displayAddress(this.settings.addr);
    throw new VaultrunError(
      'UNREACHABLE',
      `Vault at ${where} is unavailable while ${options.what}: ${retryable.reason}; gave up after ${secondsText(budget.elapsedMs())} s`,
      {
        hint: unavailableHint(retryable.reason, this.settings.addrIsDefault === true),
        ...(retryable.status ? { status: retryable.status } : {}),
      },
    );
  }

  /**
   * --consistency leader: the origin of the active node (sys/leader at the configured address, unauthenticated),
   * when it is the configured address or listed in --cluster-addr; otherwise the configured address (with a
   * warning, once, and for the rest of the run). Asked once, and again after a failure against the leader.
   */
  private async leader(budget: Deadline): Promise<string> {
    if (this.leaderBase) return this.leaderBase;
    const req: { path: string } & TransportRequest = {
      path: 'sys/leader',
      uri: '',
      method: 'GET',
      headers: {},
    };
    let body: { leader_address?: unknown } | undefined;
    try {
      body = (await this.sendWithin(budget, this.settings.addr, req)) as typeof body;
    } catch (error) {
      if (error instanceof TransportError || error instanceof ApiResponseError) {
        // Unreachable or no answer yet: this attempt goes to the configured address (and is retried there).
        this.log.debug('sys/leader did not answer; using the configured address', {
          wait_ms: Math.round(budget.remainingMs()),
        });
        return this.settings.addr;
      }
      throw error;
    }
    const got = leaderOrigin(body?.leader_address, this.settings.addr, this.settings.clusterAddrs ?? []);
    if ('origin' in got) {
      this.leaderBase = got.origin;
      this.log.debug('--consistency leader: sending requests to the active node', { addr: got.origin });
      return got.origin;
    }
    if (!this.leaderWarned) {
      this.leaderWarned = true;
      this.log.warn('--consistency leader: not following the leader address; using VAULT_ADDR', {
        reason: got.reason,
        hint: 'list the address of every node in --cluster-addr / VAULTRUN_CLUSTER_ADDRS',
      });
    }
    this.leaderBase = this.settings.addr;
    return this.leaderBase;
  }

  /** Throws the final error, or returns why the failure is worth a retry. */
  private classify(
    error: unknown,
    what: string,
    sentIndex: boolean,
    request: string,
  ): { reason: string; status?: number } {
    if (error instanceof TransportError) {
      // Not retried: the same server would send it again (and a hostile one would, endlessly).
      if (error.code === ANSWER_TOO_LARGE) {
        throw new VaultrunError(
          'UNREACHABLE',
          `Vault at ${displayAddress(this.settings.addr)} sent an answer larger than ${MAX_ANSWER_TEXT} (the most vaultrun reads) to ${request} while ${what}`,
          {
            hint: 'check VAULT_ADDR: a Vault answer is far smaller (a proxy or another service may be answering in its place)',
          },
        );
      }
      if (isTlsFailure(error)) {
        const { problem, hint } = tlsAdvice(error.code);
        throw new VaultrunError(
          'UNREACHABLE',
          `TLS failure talking to Vault at ${displayAddress(this.settings.addr)} while ${what}: ${problem} (${error.code})`,
          { hint },
        );
      }
      return { reason: error.code };
    }
    // Already said what it is (e.g. refused before sending): as it is.
    if (error instanceof VaultrunError) throw error;
    // OpenSSL refusing the TLS settings themselves (vault/tls.ts checks them at start; this is the backstop):
    // a configuration error, never an internal one.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_OSSL')) {
      throw new VaultrunError(
        'USAGE',
        `the TLS settings (VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY) cannot be used while ${what} (${code})`,
        {
          hint: 'check that each names a PEM file of the right kind: CA certificates, the client certificate, its unencrypted key',
        },
      );
    }
    const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
    if (typeof status !== 'number') {
      throw new VaultrunError('INTERNAL', `unexpected failure while ${what}`);
    }
    const body = (error as { response?: { body?: unknown } }).response?.body;
    const detail = vaultMessages(body, this.log.masker);
    if (isBehindIndex(status, body, sentIndex)) {
      return {
        reason: `HTTP ${status} (this node has not caught up with the cluster yet: X-Vault-Index)`,
        status,
      };
    }
    if (isKvUpgrading(status, body)) {
      return { reason: `HTTP ${status} (the KV mount is being upgraded: ${detail})`, status };
    }
    if (status === STANDBY_REDIRECT) {
      return {
        reason: `HTTP 307 (a standby that could not forward the request to the active node; redirects are not followed)`,
        status,
      };
    }
    if (RETRY_STATUSES.has(status)) {
      return { reason: `HTTP ${status}${detail ? ` (${detail})` : ''}`, status };
    }
    const suffix = detail ? `: ${detail}` : '';
    if (status === 403) {
      throw new VaultrunError('PERMISSION_DENIED', `permission denied while ${what}${suffix}`, {
        status,
        hint: 'the token\'s policies must grant "read" on this path (KV v2: on MOUNT/data/PATH)',
      });
    }
    if (status === 404)
      throw new VaultrunError('NOT_FOUND', `nothing found while ${what}${suffix}`, { status });
    if (status === 401)
      throw new VaultrunError('LOGIN_FAILED', `Vault refused the credentials while ${what}${suffix}`, {
        status,
      });
    throw new VaultrunError('VAULT_ERROR', `Vault answered HTTP ${status} while ${what}${suffix}`, {
      status,
    });
  }
}

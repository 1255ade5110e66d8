import { setTimeout as sleep } from 'node:timers/promises';
import type NodeVaultFactory from 'node-vault';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import { Deadline, secondsText } from './deadline.js';
import {
  createTransport,
  isTlsFailure,
  type TlsSettings,
  TransportError,
  type TransportRequest,
} from './transport.js';

/**
 * The one Vault client: node-vault for the API surface, our transport underneath, and around it retries with
 * backoff and jitter, bounded concurrency, namespaces and errors that never carry a token.
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
}

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
}

interface NodeVaultLike {
  request(options: Record<string, unknown>): Promise<unknown>;
  pathPrefix: string;
  token?: string;
}

const RETRY_STATUSES = new Set([412, 429, 472, 473, 500, 502, 503, 504]);
const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

function vaultMessages(body: unknown): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return '';
  return errors
    .slice(0, 3)
    .map((e) => String(e).replace(/\s+/g, ' ').trim().slice(0, 200))
    .join('; ');
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

/** Full jitter: a random delay up to the exponential step (AWS architecture blog's recommendation). */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const step = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return Math.max(50, Math.floor(random() * step));
}

export class VaultClient {
  readonly settings: ClientSettings;
  private readonly log: Logger;
  private readonly vault: NodeVaultLike;
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

  /**
   * node-vault (with axios) is loaded only when a reference needs Vault: a start without references does not
   * pay for it.
   */
  static async create(settings: ClientSettings, log: Logger): Promise<VaultClient> {
    const { default: nodeVault } = await import('node-vault');
    return new VaultClient(settings, log, nodeVault);
  }

  private constructor(settings: ClientSettings, log: Logger, nodeVault: typeof NodeVaultFactory) {
    this.settings = settings;
    this.log = log;
    this.transport = createTransport({
      tls: settings.tls,
      timeoutMs: settings.timeoutMs,
      maxSockets: settings.concurrency,
    });
    const transport = this.transport;
    this.vault = nodeVault({
      endpoint: settings.addr,
      apiVersion: 'v1',
      // node-vault would fall back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from the environment:
      // everything is passed explicitly instead, per request.
      token: undefined,
      namespace: settings.namespace,
      debug: () => {}, // DEBUG=node-vault would log request bodies, secret_id included
      'request-promise': { defaults: () => transport },
    }) as unknown as NodeVaultLike;
    this.vault.pathPrefix = '';
    this.vault.token = undefined;
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

  /** One API call with retries. Resolves with the parsed JSON body (undefined for 204). */
  async request<T = unknown>(method: Method, path: string, options: RequestOptions): Promise<T> {
    const budget = Deadline.earliest(new Deadline(options.waitMs ?? this.settings.waitMs), this.deadline);
    let retryable: { reason: string; status?: number } = { reason: 'no request was sent' };
    for (let attempt = 0; budget.remainingMs() > 0; attempt++) {
      const req: Record<string, unknown> & Partial<TransportRequest> = {
        path: `/${path.replace(/^\/+/, '')}`,
        method,
        headers: { ...options.headers, ...(options.token ? { 'X-Vault-Token': options.token } : {}) },
        ...(options.body === undefined ? {} : { json: options.body }),
      };
      try {
        return (await this.slot(() => {
          // Measured once a slot is free: waiting for one counts against the deadline too.
          const timeoutMs = Math.min(this.settings.timeoutMs, budget.remainingMs());
          if (timeoutMs <= 0) {
            return Promise.reject(new TransportError('ETIMEDOUT', 'no time left to send the request'));
          }
          req.timeoutMs = timeoutMs;
          this.requests++;
          return this.vault.request(req);
        })) as T;
      } catch (error) {
        retryable = this.classify(error, options.what);
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
    throw new VaultrunError(
      'UNREACHABLE',
      `Vault at ${this.settings.addr} is unavailable while ${options.what}: ${retryable.reason}; gave up after ${secondsText(budget.elapsedMs())} s`,
      {
        hint: 'check VAULT_ADDR, the network, and that Vault is unsealed and active; raise --wait to wait longer',
        ...(retryable.status ? { status: retryable.status } : {}),
      },
    );
  }

  /** Throws the final error, or returns why the failure is worth a retry. */
  private classify(error: unknown, what: string): { reason: string; status?: number } {
    if (error instanceof TransportError) {
      if (isTlsFailure(error)) {
        throw new VaultrunError(
          'UNREACHABLE',
          `TLS failure talking to Vault at ${this.settings.addr} while ${what}: ${error.code}`,
          {
            hint: "set VAULT_CACERT / VAULT_CAPATH to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME",
          },
        );
      }
      return { reason: error.code };
    }
    const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
    if (typeof status !== 'number') {
      throw new VaultrunError('INTERNAL', `unexpected failure while ${what}`);
    }
    const body = (error as { response?: { body?: unknown } }).response?.body;
    const detail = vaultMessages(body);
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

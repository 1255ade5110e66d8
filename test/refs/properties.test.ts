// Property tests of the reference parser, planner and renderer (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { parseValue, type Ref, readId } from '../../src/refs/parse.js';
import { type PlanOptions, planReferences, type ReadResult, renderPlan } from '../../src/refs/plan.js';
import { isOwnSetting } from '../../src/settings.js';

const OPTIONS: PlanOptions = { passthrough: new Set(), fileEnv: true, isOwnSetting };

/** Runs fn; returns the error it threw (anything), or undefined. */
function attempt(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** The texts our syntax errors are made of, whatever the value: a token inside them is not a leak. */
const FIXED_TEXT = [
  'vault:x',
  'vault:#k',
  'vault:x#',
  'vault:x#k#0',
  'vault:a#b#c#d',
  'vault:a/../b#k',
  '${vault:x#k',
]
  .map((value) => attempt(() => parseValue('X', value)) as VaultrunError)
  .map((e) => `${e.message}\n${e.hint}`)
  .join('\n');

/** Characters that steer the parser into every branch. */
const junk = fc.string({ unit: fc.constantFrom(...'#/.}${:ab09 -_'.split('')), maxLength: 10 });
/** A secret-like token: starts with a lowercase letter, so it is never part of an upper-case name. */
const token = fc.stringMatching(/^[a-z][a-z0-9]{7,23}$/);
const variableName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,15}$/);

/** Values that look like references and hide the token somewhere in them. */
const valueWithToken = fc.oneof(
  fc.tuple(junk, junk).map(
    ([a, b]) =>
      (t: string) =>
        `vault:${a}${t}${b}`,
  ),
  fc.tuple(junk, junk, junk).map(
    ([a, b, c]) =>
      (t: string) =>
        `vault:${a}#${b}${t}${c}`,
  ),
  fc.tuple(junk, junk, junk, fc.boolean(), junk).map(
    ([pre, a, b, close, post]) =>
      (t: string) =>
        `${pre}\${vault:${a}${t}${b}${close ? '}' : ''}${post}`,
  ),
  fc.tuple(junk, junk, junk).map(
    ([a, b, c]) =>
      (t: string) =>
        `ok \${vault:secret/a#k}${a}\${vault:${b}#${t}${c}`,
  ),
);

describe('parseValue and planReferences never leak a value into an error', () => {
  it('errors are USAGE errors naming the variable, without the token', () => {
    let errors = 0;
    fc.assert(
      fc.property(variableName, token, valueWithToken, (name, secret, build) => {
        fc.pre(!FIXED_TEXT.includes(secret));
        const value = build(secret);
        for (const run of [() => parseValue(name, value), () => planReferences({ [name]: value }, OPTIONS)]) {
          const error = attempt(run);
          if (error === undefined) continue;
          expect(error).toBeInstanceOf(VaultrunError);
          const e = error as VaultrunError;
          expect(e.code).toBe('USAGE');
          expect(e.message.startsWith(`${name}: `)).toBe(true);
          expect(e.message).not.toContain(secret);
          expect(e.hint ?? '').not.toContain(secret);
          errors++;
        }
      }),
      { numRuns: 3000 },
    );
    // The property is only worth something if it saw plenty of errors.
    expect(errors).toBeGreaterThan(1000);
  });
});

describe('parseValue and planReferences on arbitrary input', () => {
  const anyString = fc.string({ unit: 'binary', maxLength: 40 });
  const nearValid = fc
    .tuple(
      fc.array(fc.stringMatching(/^[a-z0-9._-]{1,6}$/), { minLength: 1, maxLength: 4 }),
      fc.stringMatching(/^[a-zA-Z0-9_.}-]{1,6}$/),
      fc.option(fc.oneof(fc.integer({ min: 0, max: 20 }).map(String), junk), { nil: undefined }),
    )
    .map(
      ([segments, key, version]) =>
        `${segments.join('/')}#${key}${version === undefined ? '' : `#${version}`}`,
    );
  const referenceLike = fc.oneof(
    anyString,
    anyString.map((s) => `vault:${s}`),
    fc.tuple(anyString, anyString, anyString).map(([a, b, c]) => `${a}\${vault:${b}}${c}`),
    fc.tuple(anyString, anyString).map(([a, b]) => `${a}\${vault:${b}`),
    fc.tuple(junk, junk, junk).map(([a, b, c]) => `vault:${a}#${b}#${c}`),
    // Near-valid references (paths with dot segments, keys with a brace, versions 0–20 or junk): without
    // them almost every value above is a syntax error, and the checks on successful parses would see none.
    nearValid.map((r) => `vault:${r}`),
    fc.tuple(anyString, nearValid, anyString).map(([a, r, c]) => `${a}\${vault:${r}}${c}`),
    fc.tuple(nearValid, nearValid).map(([r, q]) => `\${vault:${r}}-\${vault:${q}}`),
  );

  it('either succeed or throw a USAGE VaultrunError', () => {
    const seen = { errors: 0, references: 0 };
    fc.assert(
      fc.property(anyString, referenceLike, (name, value) => {
        const error = attempt(() => parseValue(name, value));
        if (error !== undefined) {
          expect(error).toBeInstanceOf(VaultrunError);
          expect((error as VaultrunError).code).toBe('USAGE');
          seen.errors++;
        } else if (parseValue(name, value).kind !== 'plain') {
          seen.references++;
        }
      }),
      { numRuns: 3000 },
    );
    // Count guard: both outcomes are frequent (a generator of plain strings only would prove nothing).
    expect(seen.errors, 'errors').toBeGreaterThan(1000);
    expect(seen.references, 'references').toBeGreaterThan(200);
  });

  it('planReferences does the same for whole environments', () => {
    const seen = { errors: 0, plans: 0 };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.dictionary(anyString, referenceLike, { maxKeys: 8 }),
          fc.dictionary(
            variableName,
            nearValid.map((r) => `vault:${r}`),
            { maxKeys: 4 },
          ),
        ),
        (env) => {
          const error = attempt(() => planReferences(env, OPTIONS));
          if (error !== undefined) {
            expect(error).toBeInstanceOf(VaultrunError);
            expect((error as VaultrunError).code).toBe('USAGE');
            seen.errors++;
          } else if (planReferences(env, OPTIONS).reads.length > 0) {
            seen.plans++;
          }
        },
      ),
      { numRuns: 1000 },
    );
    expect(seen.errors, 'errors').toBeGreaterThan(200);
    expect(seen.plans, 'plans with reads').toBeGreaterThan(40);
  });

  it('successful parses yield well-formed references', () => {
    const seen = { whole: 0, template: 0, inline: 0, versioned: 0 };
    fc.assert(
      fc.property(referenceLike, (value) => {
        let parsed: ReturnType<typeof parseValue>;
        try {
          parsed = parseValue('V', value);
        } catch {
          return;
        }
        const refs: Array<{ ref: Ref; inline: boolean }> =
          parsed.kind === 'whole'
            ? [{ ref: parsed.ref, inline: false }]
            : parsed.kind === 'template'
              ? parsed.segments.flatMap((s) => ('ref' in s ? [{ ref: s.ref, inline: true }] : []))
              : [];
        if (parsed.kind !== 'plain') seen[parsed.kind]++;
        if (parsed.kind === 'plain')
          expect(value.startsWith('vault:') || value.includes('${vault:')).toBe(false);
        if (parsed.kind === 'template') {
          expect(refs.length).toBeGreaterThan(0);
          // Text segments never hold a reference, and the segments put together give back the value
          // (modulo the normalised slashes of paths, hence only checked on texts).
          for (const s of parsed.segments) if ('text' in s) expect(s.text).not.toContain('${vault:');
        }
        for (const { ref, inline } of refs) {
          expect(ref.path).not.toBe('');
          expect(ref.path).not.toContain('#');
          expect(ref.path.split('/').every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
          expect(ref.key).not.toBe('');
          expect(ref.key).not.toContain('#');
          if (inline) {
            expect(`${ref.path}${ref.key}`).not.toContain('}');
            seen.inline++;
          }
          if (ref.version !== undefined) {
            expect(Number.isInteger(ref.version) && ref.version > 0).toBe(true);
            seen.versioned++;
          }
        }
      }),
      { numRuns: 3000 },
    );
    // Count guard: the checks above ran on many references of each kind.
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(80);
  });
});

describe('rendering a plan (round trip)', () => {
  const key = fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).filter((k) => !/[#}?|]/.test(k)),
    fc.constantFrom('toString', '__proto__', 'constructor', 'hasOwnProperty'),
  );
  const ref = fc.record(
    { path: fc.constantFrom('secret/a', 'secret/b', 'kv/c'), key, version: fc.integer({ min: 1, max: 3 }) },
    { requiredKeys: ['path', 'key'] },
  );
  // Text that cannot start or contain a reference (the first one may not look like a whole-value one).
  const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((t) => !t.includes('${vault:'));
  const part = fc.oneof(
    text.map((t) => ({ text: t })),
    ref.map((r) => ({ ref: r })),
  );
  // Any text a variable can hold: no NUL (a secret with one is refused for a variable, written to a file).
  const anySecret = fc.string({ unit: 'binary', maxLength: 16 });
  const secretValue = anySecret.map((s) => s.replaceAll('\0', ''));

  const syntax = (r: Ref) => `\${vault:${r.path}#${r.key}${r.version === undefined ? '' : `#${r.version}`}}`;

  it('yields exactly the template with each reference replaced by its secret', () => {
    let compared = 0;
    fc.assert(
      fc.property(
        fc.array(fc.array(part, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }),
        fc.func(secretValue),
        (templates, secretFor) => {
          const env: Record<string, string> = {};
          const expected: Record<string, string> = {};
          const data = new Map<string, Record<string, unknown>>();
          templates.forEach((parts, i) => {
            const value = parts.map((p) => ('text' in p ? p.text : syntax(p.ref))).join('');
            // Adjacent texts could make a reference together, and a leading one a whole-value reference.
            const texts = parts.map((p) => ('text' in p ? p.text : '\n')).join('');
            if (value.startsWith('vault:') || texts.includes('${vault:')) return;
            const name = `VAR_${i}`;
            env[name] = value;
            expected[name] = parts
              .map((p) => {
                if ('text' in p) return p.text;
                const id = readId(p.ref);
                // Null prototype: keys such as "toString" or "__proto__" are plain keys here, as in Vault's JSON.
                const fields = data.get(id) ?? (Object.create(null) as Record<string, unknown>);
                if (!Object.hasOwn(fields, p.ref.key)) fields[p.ref.key] = secretFor(id, p.ref.key);
                data.set(id, fields);
                return fields[p.ref.key];
              })
              .join('');
            if (!parts.some((p) => 'ref' in p)) delete expected[name];
          });
          compared += Object.keys(expected).length;
          env.UNRELATED = 'my vault ${HOME}';
          const plan = planReferences(env, OPTIONS);
          expect(new Set(plan.reads.map((r) => r.id))).toEqual(new Set(data.keys()));
          const results = new Map<string, ReadResult>([...data].map(([id, d]) => [id, { data: d }]));
          const rendered = renderPlan(plan, results, { ignoreMissing: false });
          expect(rendered.env).toEqual(expected);
          expect(rendered.files).toEqual({});
          expect(rendered.skipped).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
    // Count guard: many templates holding references were really compared (not skipped as ambiguous).
    expect(compared).toBeGreaterThan(500);
  });

  it('yields the secret itself for whole-value references, in env or file; NUL only in a file (else USAGE)', () => {
    let refused = 0;
    fc.assert(
      fc.property(
        ref,
        fc.oneof(
          anySecret,
          anySecret.map((s) => `${s}\0`),
        ),
        fc.boolean(),
        (r, secret, asFile) => {
          const name = asFile ? 'SECRET_FILE' : 'SECRET';
          const value = `vault:${r.path}#${r.key}${r.version === undefined ? '' : `#${r.version}`}`;
          const plan = planReferences({ [name]: value }, OPTIONS);
          const render = () =>
            renderPlan(plan, new Map([[readId(r), { data: { [r.key]: secret } }]]), {
              ignoreMissing: false,
            });
          if (!asFile && secret.includes('\0')) {
            refused++;
            expect(render).toThrow(
              expect.objectContaining({
                code: 'USAGE',
                message: expect.stringMatching(/^SECRET: .*a variable cannot hold a NUL byte$/),
              }),
            );
            return;
          }
          const rendered = render();
          expect(asFile ? rendered.files : rendered.env).toEqual({ [name]: secret });
          expect(asFile ? rendered.env : rendered.files).toEqual({});
        },
      ),
      { numRuns: 500 },
    );
    expect(refused).toBeGreaterThan(10);
  });
});

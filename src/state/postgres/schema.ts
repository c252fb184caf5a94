/**
 * The PostgreSQL state schema as numbered migrations. Each one runs once per (schema, table
 * prefix), inside the migration transaction, and is recorded in `<prefix>migrations`; a released
 * migration is never edited, a change is a new one.
 *
 * Table and function names are fixed at migration time (schema-qualified, no dynamic SQL), so
 * PL/pgSQL caches every plan and a gate costs one function call.
 */
export interface SchemaNames {
  /** Schema, unquoted (validated as a plain identifier). */
  readonly schema: string;
  /** Table prefix, unquoted (validated as a plain identifier). */
  readonly prefix: string;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: (n: SchemaNames) => string;
}

/** `"schema"."<prefix>name"`: a table or function of this store. */
export function qualified(n: SchemaNames, name: string): string {
  return `"${n.schema}"."${n.prefix}${name}"`;
}

/**
 * Advisory-lock namespace of a store, mixed into every lock key so that two stores in one
 * database (other schema or prefix) do not contend on the same keys.
 */
function lockNamespace(n: SchemaNames): string {
  return `'${n.schema}.${n.prefix}:'`;
}

const tables = (n: SchemaNames): string => `
-- Dedup and idempotency reservations: who holds a key, whether it finished, until when.
create table ${qualified(n, 'reservations')} (
  kind text collate "C" not null,
  key text collate "C" not null,
  holder text not null,
  done boolean not null default false,
  expires_at bigint not null,
  stored text,
  primary key (kind, key)
);

-- Sliding-window logs: one row per counted call, per key and window length.
create table ${qualified(n, 'windows')} (
  key text collate "C" not null,
  window_ms bigint not null,
  ts bigint not null,
  seq bigint generated always as identity,
  primary key (key, window_ms, ts, seq)
);

create table ${qualified(n, 'kv')} (
  key text collate "C" primary key,
  value text not null,
  version bigint not null,
  expires_at bigint
);

-- Never deleted by cleanup: a released lease keeps its token so the next one is higher.
create table ${qualified(n, 'leases')} (
  name text collate "C" primary key,
  holder text not null,
  token bigint not null,
  expires_at bigint not null
);

create table ${qualified(n, 'due')} (
  queue text collate "C" not null,
  id text collate "C" not null,
  due_at bigint not null,
  payload text not null,
  holder text,
  claimed_until bigint not null default 0,
  attempts integer not null default 0,
  primary key (queue, id)
);
create index "${n.prefix}due_ready" on ${qualified(n, 'due')} (queue, due_at, id);
`;

/*
 * gate_decide(ops, now, dry) returns null when every op passes (and, unless dry, applies them
 * all), or the first blocker as jsonb. Its caller holds the key locks: gate() for one call,
 * gate_many() for a batch. Each takes a transaction-scoped advisory lock per distinct key, in
 * ascending lock-id order (so gates never deadlock), so checks and writes of one gate cannot
 * interleave with another's: rows that do not exist yet (a first reservation, an empty window)
 * cannot be locked with FOR UPDATE, a key lock can.
 */
const decide = (n: SchemaNames): string => {
  const res = qualified(n, 'reservations');
  const win = qualified(n, 'windows');
  const blocked = (index: string): string =>
    `return jsonb_build_object('pass', false, 'index', ${index}, 'kind', v_kind,
          'inFlight', not v_done, 'holder', v_holder, 'stored', v_stored);`;
  return `
create or replace function ${qualified(n, 'gate_decide')}(p_ops jsonb, p_now bigint, p_dry boolean)
returns jsonb language plpgsql as $fn$
declare
  v_n integer := jsonb_array_length(p_ops);
  v_op jsonb;
  v_kind text;
  v_lim jsonb;
  v_window bigint;
  v_oldest bigint;
  v_retry bigint;
  v_best jsonb;
  v_best_retry bigint;
  v_holder text;
  v_done boolean;
  v_expires bigint;
  v_stored text;
  v_seen text[] := '{}';
  v_id text;
begin
  -- The common case, one reservation: try to take the key outright; only a key that exists
  -- needs a look (and is taken over when expired).
  if v_n = 1 and not p_dry and p_ops->0->>'kind' <> 'throttle' then
    v_op := p_ops->0;
    v_kind := v_op->>'kind';
    insert into ${res} (kind, key, holder, done, expires_at, stored)
      values (v_kind, v_op->>'key', v_op->>'actionId', false,
        p_now + (v_op->>'ttlMs')::numeric::bigint, null)
      on conflict (kind, key) do nothing;
    if found then
      return null;
    end if;
    select r.holder, r.done, r.expires_at, r.stored into v_holder, v_done, v_expires, v_stored
      from ${res} r where r.kind = v_kind and r.key = v_op->>'key';
    if found and v_expires > p_now then
      ${blocked('0')}
    end if;
    -- Expired (or removed by cleanup meanwhile): take it over.
    insert into ${res} as r (kind, key, holder, done, expires_at, stored)
      values (v_kind, v_op->>'key', v_op->>'actionId', false,
        p_now + (v_op->>'ttlMs')::numeric::bigint, null)
      on conflict (kind, key) do update set holder = excluded.holder, done = false,
        expires_at = excluded.expires_at, stored = null;
    return null;
  end if;

  -- Check every op in order; the first that blocks decides and nothing is applied.
  for i in 0 .. v_n - 1 loop
    v_op := p_ops->i;
    v_kind := v_op->>'kind';
    if v_kind = 'throttle' then
      v_best := null;
      v_best_retry := null;
      for j in 0 .. jsonb_array_length(v_op->'limits') - 1 loop
        v_lim := v_op->'limits'->j;
        v_window := (v_lim->>'windowMs')::numeric::bigint;
        -- The limit-th newest call still in the window: the window is full, and it is the one
        -- whose departure frees a slot.
        select w.ts into v_oldest from ${win} w
          where w.key = v_op->>'key' and w.window_ms = v_window and w.ts > p_now - v_window
          order by w.ts desc, w.seq desc
          offset greatest((v_lim->>'limit')::numeric::bigint - 1, 0) limit 1;
        if found then
          v_retry := greatest(1, v_oldest + v_window - p_now);
          if v_best_retry is null or v_retry > v_best_retry then
            v_best_retry := v_retry;
            v_best := v_lim;
          end if;
        end if;
      end loop;
      if v_best is not null then
        return jsonb_build_object('pass', false, 'index', i, 'kind', 'throttle',
          'retryAfterMs', v_best_retry, 'limit', v_best->'limit', 'windowMs', v_best->'windowMs');
      end if;
    else
      select r.holder, r.done, r.expires_at, r.stored into v_holder, v_done, v_expires, v_stored
        from ${res} r where r.kind = v_kind and r.key = v_op->>'key';
      if found and v_expires > p_now then
        ${blocked('i')}
      end if;
    end if;
  end loop;

  if p_dry then
    return null;
  end if;

  -- Apply in order: a key reserved twice ends with the later op's holder, and a (key, window)
  -- named by several limits counts the call once, as in memory.
  for i in 0 .. v_n - 1 loop
    v_op := p_ops->i;
    v_kind := v_op->>'kind';
    if v_kind = 'throttle' then
      for j in 0 .. jsonb_array_length(v_op->'limits') - 1 loop
        v_lim := v_op->'limits'->j;
        v_window := (v_lim->>'windowMs')::numeric::bigint;
        v_id := v_window::text || ':' || (v_op->>'key');
        continue when v_id = any(v_seen);
        v_seen := v_seen || v_id;
        insert into ${win} (key, window_ms, ts) values (v_op->>'key', v_window, p_now);
        -- Drop what left the window, so a log holds at most about one window of calls.
        delete from ${win} w
          where w.key = v_op->>'key' and w.window_ms = v_window and w.ts <= p_now - v_window;
      end loop;
    else
      insert into ${res} as r (kind, key, holder, done, expires_at, stored)
        values (v_kind, v_op->>'key', v_op->>'actionId', false,
          p_now + (v_op->>'ttlMs')::numeric::bigint, null)
        on conflict (kind, key) do update set holder = excluded.holder, done = false,
          expires_at = excluded.expires_at, stored = null;
    end if;
  end loop;
  return null;
end
$fn$;`;
};

/** The lock ids of a jsonb array of ops `o`, as a SQL expression. */
const lockId = (n: SchemaNames, o: string): string =>
  `hashtextextended(${lockNamespace(n)} || (${o}->>'kind') || ':' || (${o}->>'key'), 0)`;

/** gate(ops, now, dry): one gate call, in its own transaction. */
const gate = (n: SchemaNames): string => `
create or replace function ${qualified(n, 'gate')}(p_ops jsonb, p_now bigint, p_dry boolean)
returns jsonb language plpgsql as $fn$
declare
  v_lock bigint;
begin
  if jsonb_array_length(p_ops) = 1 then
    perform pg_advisory_xact_lock(${lockId(n, '(p_ops->0)')});
  else
    for v_lock in select distinct ${lockId(n, 'o')} from jsonb_array_elements(p_ops) o order by 1
    loop
      perform pg_advisory_xact_lock(v_lock);
    end loop;
  end if;
  return ${qualified(n, 'gate_decide')}(p_ops, p_now, p_dry);
end
$fn$;`;

/**
 * gate_many([[ops, now, dry], ...]): several gate calls in one round trip and one transaction
 * (one commit), decided one after the other as if sent separately in that order. The keys of
 * the whole batch are locked first, in one ascending order, so batches never deadlock.
 * Returns a jsonb array with one result (null = pass) per call.
 */
const gateMany = (n: SchemaNames): string => `
create or replace function ${qualified(n, 'gate_many')}(p_calls jsonb)
returns jsonb language plpgsql as $fn$
declare
  v_lock bigint;
  v_call jsonb;
  v_out jsonb := '[]';
begin
  for v_lock in
    select distinct ${lockId(n, 'o')}
    from jsonb_array_elements(p_calls) c, jsonb_array_elements(c->0) o order by 1
  loop
    perform pg_advisory_xact_lock(v_lock);
  end loop;
  for i in 0 .. jsonb_array_length(p_calls) - 1 loop
    v_call := p_calls->i;
    v_out := v_out || jsonb_build_array(${qualified(n, 'gate_decide')}(
      v_call->0, (v_call->>1)::bigint, (v_call->>2)::boolean));
  end loop;
  return v_out;
end
$fn$;`;

/** settle(ops): each op in order, acting only while its actionId still holds the key. */
const settle = (n: SchemaNames): string => {
  const res = qualified(n, 'reservations');
  return `
create or replace function ${qualified(n, 'settle')}(p_ops jsonb)
returns void language plpgsql as $fn$
declare
  o jsonb;
begin
  for o in select * from jsonb_array_elements(p_ops) loop
    if o->>'op' = 'release' then
      delete from ${res} r
        where r.kind = o->>'gate' and r.key = o->>'key' and r.holder = o->>'actionId';
    else
      update ${res} r set done = true, stored = o->>'outcome'
        where r.kind = o->>'gate' and r.key = o->>'key' and r.holder = o->>'actionId';
    end if;
  end loop;
end
$fn$;`;
};

/**
 * kv_set(key, value, expires_at, if_version, now): compare-and-set on the live version (an
 * expired key counts as absent, version 0). Returns the new version, or null when the condition
 * failed. A lost insert race loops to re-check under the winner's row lock.
 */
const kvSet = (n: SchemaNames): string => {
  const kv = qualified(n, 'kv');
  return `
create or replace function ${qualified(n, 'kv_set')}(
  p_key text, p_value text, p_expires bigint, p_if bigint, p_now bigint)
returns bigint language plpgsql as $fn$
declare
  v_version bigint;
  v_expires bigint;
begin
  loop
    select k.version, k.expires_at into v_version, v_expires from ${kv} k
      where k.key = p_key for update;
    if found then
      if v_expires is not null and v_expires <= p_now then
        v_version := 0;
      end if;
      if p_if is not null and v_version <> p_if then
        return null;
      end if;
      update ${kv} k set value = p_value, version = v_version + 1, expires_at = p_expires
        where k.key = p_key;
      return v_version + 1;
    end if;
    if p_if is not null and p_if <> 0 then
      return null;
    end if;
    insert into ${kv} (key, value, version, expires_at) values (p_key, p_value, 1, p_expires)
      on conflict (key) do nothing;
    if found then
      return 1;
    end if;
  end loop;
end
$fn$;`;
};

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: '0001_tables', sql: tables },
  {
    version: 2,
    name: '0002_functions',
    sql: (n) => [decide(n), gate(n), gateMany(n), settle(n), kvSet(n)].join('\n'),
  },
];

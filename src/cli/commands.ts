/**
 * The `weft config` commands. A document is checked by the client's own rules
 * (`validateConfigDocument`: the same messages a client would log when rejecting it) before
 * anything is written; writes go through `ConfigStore.write`, a compare-and-swap on the revision
 * the operator saw, so of two operators writing over the same revision one wins and the other
 * is told who did, and what to do.
 */
import { readFile } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { stringify } from "yaml";
import { validateConfigDocument } from "../client/routing.js";
import { parseConfigText } from "../config/parse.js";
import { systemClock } from "../core/clock.js";
import { InvalidOptionsError } from "../core/errors.js";
import type { EtcdClient } from "../etcd/client.js";
import { UsageError, type Invocation } from "./args.js";
import { formatHunks, lineDiff } from "./diff.js";
import { canonicalJson, ConfigStore, sameDocument, sha256, type Meta, type Version } from "./store.js";

/** The config changed since the revision the operator saw. Exit code 3. */
export class ConflictError extends Error {}

export interface Output {
  /** A line of the result (stdout). */
  out(text: string): void;
  /** A line about the result (stderr): headers around a document that must stay parseable. */
  note(text: string): void;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Runs `validate` (no etcd), or any other command against `etcd`. */
export async function runCommand(inv: Invocation, etcd: EtcdClient | null, io: Output, env: Env): Promise<void> {
  if (inv.command === "validate") {
    await loadDocument(inv, true);
    return io.out(`${inv.file} is a valid config for "${inv.service}"`);
  }
  const store = new ConfigStore(etcd as EtcdClient, inv.prefix, inv.service);
  switch (inv.command) {
    case "put":
      return put(inv, store, io, env);
    case "get":
      return get(inv, store, io);
    case "diff":
      return diff(inv, store, io);
    case "history":
      return history(inv, store, io);
    case "rollback":
      return rollback(inv, store, io, env);
  }
}

async function put(inv: Invocation, store: ConfigStore, io: Output, env: Env): Promise<void> {
  const document = await loadDocument(inv, true);
  const state = await store.read();
  const { current } = state;
  const seen = current?.revision ?? 0;
  if (inv.expectRevision !== undefined && inv.expectRevision !== seen)
    throw conflict(inv, inv.expectRevision, current, "put");
  if (current !== undefined && current.parseError === undefined && sameDocument(current.document, document))
    return io.out(
      `no changes: revision ${current.revision} of "${inv.service}" already holds this config; nothing written`,
    );
  const text = canonicalJson(document);
  const result = await store.write(state, seen, text, meta(inv, env, text, inv.message ?? ""));
  if (!result.written) throw conflict(inv, seen, result.current, "put");
  io.out(
    `"${inv.service}": revision ${result.revision} written${current === undefined ? " (its first version)" : ` (revision ${seen} kept in history)`}`,
  );
}

async function get(inv: Invocation, store: ConfigStore, io: Output): Promise<void> {
  const current = existing(inv, store, (await store.read()).current);
  const header = [`"${inv.service}" revision ${current.revision}: ${written(current)}`, `etcd key ${store.key}`];
  const why = problem(inv.service, current);
  if (why !== "") header.push(`${why} (clients refuse it and keep their last good version)`);
  if (inv.json || current.parseError !== undefined) {
    // The document alone on stdout, so `get --json > file` gives a file `put` takes back.
    for (const line of header) io.note(line);
    return io.out(current.parseError === undefined ? canonicalJson(current.document) : current.text);
  }
  io.out(`${header.map((line) => `# ${line}`).join("\n")}\n${stringify(current.document)}`);
}

async function diff(inv: Invocation, store: ConfigStore, io: Output): Promise<void> {
  const document = await loadDocument(inv, false);
  const { current } = await store.read();
  const before =
    current === undefined ? "" : current.parseError === undefined ? canonicalJson(current.document) : current.text;
  const hunks = formatHunks(lineDiff(lines(before), lines(canonicalJson(document))));
  const name =
    current === undefined ? `"${inv.service}" (no config yet)` : `"${inv.service}" revision ${current.revision}`;
  if (hunks === "") return io.out(`no changes: ${inv.file} holds the same config as ${name}`);
  io.out(`--- ${name}\n+++ ${inv.file}\n${hunks}`.trimEnd());
}

async function history(inv: Invocation, store: ConfigStore, io: Output): Promise<void> {
  const { state, versions } = await store.versions();
  if (versions.length === 0) return io.out(`no versions of "${inv.service}" (${store.key} does not exist)`);
  const rows = versions.map((v) => [
    `rev ${v.revision}`,
    v.meta === null ? "-" : v.meta.at.replace(/\.\d+Z$/, "Z"),
    v.meta === null ? "(written outside weft config)" : v.meta.by,
    v.meta === null || v.meta.message === "" ? "" : JSON.stringify(v.meta.message),
    [v.revision === state.current?.revision ? "← current" : "", problem(inv.service, v)].filter(Boolean).join(", "),
  ]);
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length))) ?? [];
  io.out(`history of "${inv.service}" (etcd key ${store.key}), newest first:`);
  for (const row of rows) io.out(`  ${row.map((cell, i) => cell.padEnd(widths[i] as number)).join("  ")}`.trimEnd());
}

async function rollback(inv: Invocation, store: ConfigStore, io: Output, env: Env): Promise<void> {
  const { state, versions } = await store.versions();
  const current = existing(inv, store, state.current);
  const target =
    inv.to === undefined
      ? versions.find((v) => v.revision < current.revision)
      : versions.find((v) => v.revision === inv.to);
  if (target === undefined)
    throw new UsageError(
      inv.to === undefined
        ? `"${inv.service}" has no version before revision ${current.revision} to roll back to`
        : `revision ${inv.to} is not a version of "${inv.service}" (\`weft config history ${inv.service}\` lists them)`,
    );
  if (target.revision === current.revision)
    return io.out(`no changes: revision ${target.revision} is the current version of "${inv.service}"`);
  const why = problem(inv.service, target);
  if (why !== "")
    throw new UsageError(`refused: revision ${target.revision} of "${inv.service}" ${why}; nothing written`);
  if (current.parseError === undefined && sameDocument(current.document, target.document))
    return io.out(
      `no changes: the current revision ${current.revision} of "${inv.service}" already holds the config of revision ${target.revision}`,
    );
  const text = canonicalJson(target.document);
  const result = await store.write(
    state,
    current.revision,
    text,
    meta(inv, env, text, inv.message ?? `rollback to revision ${target.revision}`),
  );
  if (!result.written) throw conflict(inv, current.revision, result.current, "rollback");
  io.out(
    `"${inv.service}": revision ${result.revision} written: the config of revision ${target.revision} again (revision ${current.revision} kept in history)`,
  );
}

/** FILE's document; with `validate`, checked as a client would check it. Bad input throws `UsageError`. */
async function loadDocument(inv: Invocation, validate: boolean): Promise<unknown> {
  const refused = (why: string): string => (inv.command === "put" ? `refused: ${why}; nothing written` : why);
  let text: string;
  try {
    text = await readFile(inv.file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${inv.file}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseConfigText(text, inv.file);
  } catch (error) {
    throw new UsageError(refused((error as Error).message));
  }
  if (validate) {
    try {
      validateConfigDocument(inv.service, document);
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      throw new UsageError(refused(`${inv.file} is not a valid config for "${inv.service}": ${error.message}`));
    }
  }
  return document;
}

/** Why a version would be refused ("" when it would not): it does not parse, or it does not validate. */
function problem(service: string, version: Version): string {
  if (version.parseError !== undefined) return `does not parse: ${version.parseError}`;
  try {
    validateConfigDocument(service, version.document);
    return "";
  } catch (error) {
    if (!(error instanceof InvalidOptionsError)) throw error;
    return `is invalid: ${error.message}`;
  }
}

function existing(inv: Invocation, store: ConfigStore, current: Version | undefined): Version {
  if (current === undefined) throw new UsageError(`no config for "${inv.service}": ${store.key} does not exist`);
  return current;
}

function meta(inv: Invocation, env: Env, text: string, message: string): Meta {
  return {
    by: inv.by ?? defaultBy(env),
    at: new Date(systemClock.wallNow()).toISOString(),
    message,
    sha256: sha256(text),
  };
}

function defaultBy(env: Env): string {
  let user = env.USER ?? env.LOGNAME;
  if (user === undefined) {
    try {
      user = userInfo().username;
    } catch {
      user = "unknown";
    }
  }
  return `${user}@${hostname()}`;
}

function written(version: Version): string {
  if (version.meta === null) return "written outside weft config (no meta of weft's for this text)";
  const message = version.meta.message === "" ? "" : `: ${JSON.stringify(version.meta.message)}`;
  return `written by ${version.meta.by} at ${version.meta.at}${message}`;
}

function conflict(inv: Invocation, seen: number, now: Version | undefined, command: "put" | "rollback"): ConflictError {
  const state = now === undefined ? "it no longer exists" : `it is now revision ${now.revision}, ${written(now)}`;
  const redo =
    command === "put"
      ? `see what changed with \`weft config diff ${inv.service} ${inv.file}\`, then put again (with --expect-revision ${now?.revision ?? 0} if you pin it)`
      : `see \`weft config history ${inv.service}\`, then roll back again`;
  return new ConflictError(
    `conflict: the config of "${inv.service}" changed since ${seen === 0 ? "you saw none" : `revision ${seen}`}: ${state}. Nothing was written; ${redo}.`,
  );
}

function lines(text: string): string[] {
  return text === "" ? [] : text.replace(/\n$/, "").split("\n");
}

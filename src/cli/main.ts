/**
 * `weft config …` as a function: `main(argv, io)` runs one command against etcd and resolves with
 * the exit code — 0 done, 1 bad input (usage, a file that does not parse or validate, nothing to
 * get or roll back), 2 etcd unreachable or failing, 3 a conflict (the config changed since the
 * revision the write compared against). Tests call it in-process; `weft.ts` is the bin.
 */
import { EtcdClient, EtcdError, EtcdUnreachableError } from "../etcd/client.js";
import { parseCommandLine, UsageError, type Invocation } from "./args.js";
import { ConflictError, runCommand } from "./commands.js";

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** `WEFT_ETCD` (the default of --etcd) and `USER` (of --by). Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const EXIT = Object.freeze({ ok: 0, badInput: 1, etcd: 2, conflict: 3 });

/**
 * Runs `weft <argv…>`; resolves with the exit code. Never rejects for what an operator can get
 * wrong: each case is a message on stderr and its exit code.
 * @example const code = await main(["config", "get", "--etcd", "http://127.0.0.1:2379", "catalog"], process);
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const env = io.env ?? process.env;
  const err = (text: string): void => void io.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  let inv: Invocation;
  try {
    const parsed = parseCommandLine(argv, env);
    if ("help" in parsed) {
      io.stdout.write(parsed.help);
      return EXIT.ok;
    }
    inv = parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`weft: ${error.message}\n`);
    if (error.usage !== undefined) err(error.usage);
    return EXIT.badInput;
  }
  const etcd = inv.hosts.length === 0 ? null : new EtcdClient({ hosts: inv.hosts });
  try {
    await runCommand(
      inv,
      etcd,
      { out: (text) => void io.stdout.write(text.endsWith("\n") ? text : `${text}\n`), note: err },
      env,
    );
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`weft config ${inv.command}: ${error.message}`);
      return EXIT.badInput;
    }
    if (error instanceof ConflictError) {
      err(`weft config ${inv.command}: ${error.message}`);
      return EXIT.conflict;
    }
    if (error instanceof EtcdUnreachableError || error instanceof EtcdError) {
      const what = error instanceof EtcdError ? `etcd refused the request: ${error.message}` : error.message;
      const writes = inv.command === "put" || inv.command === "rollback";
      err(
        `weft config ${inv.command}: ${what}${writes ? "; nothing was written" : ""} (is etcd running at ${inv.hosts.join(", ")}?)`,
      );
      return EXIT.etcd;
    }
    throw error;
  } finally {
    await etcd?.close();
  }
}

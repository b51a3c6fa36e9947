/**
 * Test certificates made with the real `openssl` (Debian's; `.ci/run` installs it when missing):
 * a CA, a server certificate for 127.0.0.1, and client certificates carrying SPIFFE IDs in their
 * URI SAN — the X.509-SVID form. Written to a temp dir; nothing is checked in.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const OPENSSL_MISSING = "openssl is not installed: apt-get install -y openssl (Debian/Ubuntu)";

/** True when `openssl` runs. In CI a missing binary throws instead, so the suite fails rather than skips. */
export const hasOpenssl: boolean = (() => {
  const found = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
  if (!found && process.env.CI !== undefined && process.env.CI !== "") throw new Error(OPENSSL_MISSING);
  if (!found) console.warn(`skipping TLS tests: ${OPENSSL_MISSING}`);
  return found;
})();

export interface Pem {
  readonly key: string;
  readonly cert: string;
}

export interface IssueOptions {
  /** openssl's subjectAltName value (`IP:127.0.0.1,URI:spiffe://…`), or "" for none. */
  readonly sans: string;
  readonly usage: "server" | "client";
  /** Validity in days from now (default 2). */
  readonly days?: number;
  /** Issue a certificate whose validity ended in the past (2020-01-01 → 2020-01-02). */
  readonly expired?: boolean;
}

export interface TestPki {
  readonly ca: string;
  readonly server: Pem;
  /** A client certificate whose URI SAN is each given SPIFFE ID (or none); `sans` as openssl's subjectAltName. */
  client(name: string, sans: string): Pem;
  /** Any certificate from this CA. */
  issue(name: string, options: IssueOptions): Pem;
  /** The directory the files are in (`<name>.crt`, `<name>.key`, `ca.crt`). */
  readonly dir: string;
  close(): void;
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "weft-pki-"));
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  run(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=weft test CA",
  );
  const issue = (name: string, subject: string, extensions: string): Pem => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    run(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    );
    run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
    return {
      key: readFileSync(join(dir, `${name}.key`), "utf8"),
      cert: readFileSync(join(dir, `${name}.crt`), "utf8"),
    };
  };
  let serial = 0x1000;
  const issueWith = (name: string, options: IssueOptions): Pem => {
    const extensions = `${options.sans === "" ? "" : `subjectAltName=${options.sans}\n`}extendedKeyUsage=${options.usage === "server" ? "serverAuth" : "clientAuth"}\n`;
    if (options.expired !== true && options.days === undefined) return issue(name, `/CN=${name}`, extensions);
    writeFileSync(join(dir, `${name}.ext`), extensions);
    run(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    );
    if (options.expired === true) {
      // `openssl x509` (3.0) cannot set dates in the past; `openssl ca` can.
      writeFileSync(join(dir, "ca.cnf"), CA_CONFIG);
      writeFileSync(join(dir, "index.txt"), "");
      writeFileSync(join(dir, "serial"), (serial++).toString(16) + "\n");
      run(
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-notext",
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200102000000Z",
        "-in",
        `${name}.csr`,
        "-out",
        `${name}.crt`,
        "-extfile",
        `${name}.ext`,
      );
    } else {
      run(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        String(options.days),
        "-extfile",
        `${name}.ext`,
      );
    }
    return {
      key: readFileSync(join(dir, `${name}.key`), "utf8"),
      cert: readFileSync(join(dir, `${name}.crt`), "utf8"),
    };
  };
  const server = issue(
    "server",
    "/CN=127.0.0.1",
    "subjectAltName=IP:127.0.0.1,URI:spiffe://example.org/ns/shop/sa/orders\nextendedKeyUsage=serverAuth\n",
  );
  return {
    ca: readFileSync(join(dir, "ca.crt"), "utf8"),
    server,
    client: (name, sans) =>
      issue(name, `/CN=${name}`, `${sans === "" ? "" : `subjectAltName=${sans}\n`}extendedKeyUsage=clientAuth\n`),
    issue: issueWith,
    dir,
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const CA_CONFIG = `[ ca ]
default_ca = weft
[ weft ]
dir = .
database = index.txt
new_certs_dir = .
certificate = ca.crt
private_key = ca.key
serial = serial
default_md = sha256
policy = anything
unique_subject = no
[ anything ]
commonName = supplied
`;

/**
 * The pure parts of the config sources: option checks, names, and the service names a key or a
 * path accepts. Reading files and etcd runs in test/integration/config-sources.test.ts.
 */
import { describe, expect, it } from "vitest";
import { systemClock } from "../core/clock.js";
import { InvalidOptionsError } from "../core/errors.js";
import { etcdConfig, type EtcdConfigOptions } from "./etcd.js";
import { fileConfig, type FileConfigOptions } from "./file.js";

function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error("expected an InvalidOptionsError");
}

const hosts = ["http://127.0.0.1:2379"];
const context = { clock: systemClock, random: () => 0.5, warn: () => {} };

describe("etcdConfig options", () => {
  it("names the source by prefix (default /weft/config/) and hosts", () => {
    expect(etcdConfig({ hosts }).name).toBe("etcd:/weft/config/@http://127.0.0.1:2379");
    expect(etcdConfig({ hosts: ["http://a:2379/", "https://b:2379"], prefix: "/cfg/" }).name).toBe(
      "etcd:/cfg/@http://a:2379,https://b:2379",
    );
  });

  it("fails at construction, naming the option, the value and what is allowed", () => {
    const make = (options: unknown) => () => etcdConfig(options as EtcdConfigOptions);
    expect(invalid(make({ hosts: [] })).message).toMatch(
      /invalid option etcdConfig.hosts: got \[\]; expected a non-empty array of http\(s\) URLs/,
    );
    expect(invalid(make({ hosts: ["127.0.0.1:2379"] })).option).toBe("etcdConfig.hosts[0]");
    expect(invalid(make({ hosts, prefix: "" })).message).toMatch(
      /etcdConfig.prefix: got ""; expected a non-empty key prefix, e.g. "\/weft\/config\/"/,
    );
    expect(invalid(make({ hosts, requestTimeoutMs: -1 })).option).toBe("etcdConfig.requestTimeoutMs");
    expect(invalid(make({ hosts, probeIntervalMs: "10s" })).option).toBe("etcdConfig.probeIntervalMs");
    expect(invalid(make({ hosts, backoff: { baseMs: 500, maxMs: 100 } })).option).toBe("etcdConfig.backoff.maxMs");
    expect(invalid(make({ hosts, prefx: "/p/" })).message).toMatch(
      /unknown option etcdConfig.prefx \(did you mean etcdConfig.prefix\?\)/,
    );
    expect(invalid(make(undefined)).option).toBe("etcdConfig");
  });

  it("refuses, at watch(), a service name that would leave its key", () => {
    const source = etcdConfig({ hosts });
    for (const name of ["", "a/b", "..", ".meta", "-x", "a b", "caf\u00e9"]) {
      const error = invalid(() => source.watch(name, context));
      expect(error.option).toBe("service");
      expect(error.message).toContain("/^[A-Za-z0-9][A-Za-z0-9._-]*$/");
    }
  });
});

describe("fileConfig options", () => {
  it("names the source by its absolute path, {service} kept", () => {
    expect(fileConfig("/etc/weft/{service}.yaml").name).toBe("file:/etc/weft/{service}.yaml");
    expect(fileConfig("conf/{service}.json").name).toBe(`file:${process.cwd()}/conf/{service}.json`);
  });

  it("fails at construction, naming the option, the value and what is allowed", () => {
    expect(invalid(() => fileConfig("")).message).toMatch(/fileConfig path: got ""; expected a non-empty file path/);
    expect(invalid(() => fileConfig("/x.yaml", { pollMs: 0 })).option).toBe("fileConfig.pollMs");
    expect(invalid(() => fileConfig("/x.yaml", { debounceMs: false } as unknown as FileConfigOptions)).option).toBe(
      "fileConfig.debounceMs",
    );
    expect(invalid(() => fileConfig("/x.yaml", { poll: 5 } as FileConfigOptions)).message).toMatch(
      /unknown option fileConfig.poll \(did you mean fileConfig.pollMs\?\)/,
    );
  });

  it("checks the service name only where it becomes part of the path", async () => {
    expect(invalid(() => fileConfig("/etc/weft/{service}.yaml").watch("../passwd", context)).option).toBe("service");
    const watch = fileConfig("/nonexistent-weft-dir/fixed.yaml").watch("any name/at all", context);
    expect(watch.snapshot().source).toBe("file:/nonexistent-weft-dir/fixed.yaml");
    await watch.close();
  });
});

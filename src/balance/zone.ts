/**
 * Zone-aware preference — a simplified form of Envoy's zone-aware (locality-aware) routing:
 * keep traffic in the caller's zone, where it is faster and often cheaper (no cross-zone
 * transfer), while the local zone is healthy enough and not overloaded; otherwise spill over to
 * every ready endpoint and let the picker spread the load.
 *
 * `zoneCandidates` narrows the ready list before the picker sees it. The local zone is kept when
 * 1. it has ready endpoints, and at least `minLocalHealthyPercent` (default 70) of its endpoints
 *    (those not draining) are available — below that, the survivors would take the whole zone's
 *    traffic (the same reasoning as Envoy's panic threshold, applied per zone); and
 * 2. it is not saturated: its endpoints do not carry, on average, more than
 *    `saturationInflight` (default 8) requests in flight beyond the other zones' average. In
 *    steady state the other zones carry nothing from this client, so the local zone takes up
 *    to 8 × its size in concurrent requests before the overflow goes to the others; once it
 *    spills, the picker (P2C) sends the excess to the idle remote endpoints and the local zone
 *    is preferred again as soon as the gap closes.
 * Envoy instead routes a computed share of traffic across zones according to the relative sizes
 * of the caller's and the upstream's zones; a library does not know where its peers run, so
 * this uses the load it can see.
 *
 * Cost: the split of a `ready` array into local and remote endpoints is computed once per array
 * (cached by identity in a WeakMap, so it goes when the array goes) and the function returns
 * either that cached local array or `ready` itself — no allocation per call, and stable
 * identities, so pickers that build structures per array keep both. The saturation check reads
 * the in-flight counts of at most 16 endpoints per side per call, a window that rotates through
 * larger zones: O(1).
 */
import type { Endpoint } from "../core/endpoint.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

export interface ZoneOptions {
  /** Percent of the local zone's (non-draining) endpoints that must be available to stay local. Default 70. */
  readonly minLocalHealthyPercent?: number;
  /**
   * The local zone is saturated — spill over — when its mean in-flight per endpoint exceeds the
   * other zones' mean by more than this. Default 8; `false`: never spill for load.
   */
  readonly saturationInflight?: number | false;
}

/** `zoneAware` as the client options take it. */
export interface ZoneAwareOptions extends ZoneOptions {
  /** The zone this process runs in (matched against `Endpoint.zone`). */
  readonly zone: string;
}

/** Normalized, frozen `zoneAware` options. */
export interface ZoneAwareConfig {
  readonly zone: string;
  readonly minLocalHealthyPercent: number;
  readonly saturationInflight: number | false;
}

/** Default `minLocalHealthyPercent`: keep traffic local while 70 % of the zone is available. */
const DEFAULT_MIN_LOCAL_HEALTHY_PERCENT = 70;
/** Default `saturationInflight`: spill once local endpoints carry 8 more in flight than the others. */
const DEFAULT_SATURATION_INFLIGHT = 8;
/** Endpoints per side whose in-flight counts are read per call. */
const SAMPLE = 16;

interface Split {
  readonly all: readonly Endpoint[];
  readonly zone: string;
  readonly minLocalHealthyPercent: number;
  /** The local ready endpoints to prefer; null when the zone is absent or not healthy enough. */
  readonly local: readonly Endpoint[] | null;
  readonly remote: readonly Endpoint[];
  localCursor: number;
  remoteCursor: number;
}

const splits = new WeakMap<readonly Endpoint[], Split>();
/**
 * The last array seen, checked before the WeakMap (a client calls with the same array again and
 * again). It keeps that one array alive until the next call, which is harmless.
 */
let lastReady: readonly Endpoint[] | null = null;
let lastSplit: Split | null = null;

function computeSplit(
  ready: readonly Endpoint[],
  all: readonly Endpoint[],
  zone: string,
  minLocalHealthyPercent: number,
): Split {
  const local = ready.filter((e) => e.zone === zone);
  const remote = ready.filter((e) => e.zone !== zone);
  let total = 0;
  for (const e of all) if (e.zone === zone && e.state !== "draining") total++;
  let available = 0;
  for (const e of local) if (e.available) available++;
  const healthy = local.length > 0 && total > 0 && available * 100 >= minLocalHealthyPercent * total;
  return {
    all,
    zone,
    minLocalHealthyPercent,
    // Every ready endpoint local: return `ready` itself, one identity fewer for the pickers.
    local: !healthy ? null : remote.length === 0 ? ready : Object.freeze(local),
    remote,
    localCursor: 0,
    remoteCursor: 0,
  };
}

/** Mean in-flight over `group`: exact up to SAMPLE endpoints, else over a rotating window of SAMPLE. */
function meanInflight(group: readonly Endpoint[], cursor: number): number {
  const n = group.length;
  let sum = 0;
  if (n <= SAMPLE) {
    for (let i = 0; i < n; i++) sum += (group[i] as Endpoint).inflight;
    return sum / n;
  }
  let at = cursor;
  for (let k = 0; k < SAMPLE; k++) {
    sum += (group[at] as Endpoint).inflight;
    at = at + 1 === n ? 0 : at + 1;
  }
  return sum / SAMPLE;
}

/**
 * The endpoints to pick from: the local zone's ready endpoints while enough of the zone is
 * available and it is not saturated, otherwise `ready` itself (spill over). Returns a cached
 * array or `ready`, never a new one per call.
 * @param ready the ready endpoints (as the balance layer gets them from `EndpointSet.ready`)
 * @param all every endpoint of the set (`EndpointSet.all`), to judge the local zone's health
 * @param localZone this process's zone
 * @param options `minLocalHealthyPercent` (70), `saturationInflight` (8, or false)
 * @example const candidates = zoneCandidates(set.ready, set.all, "eu-west-1a", config);
 */
export function zoneCandidates(
  ready: readonly Endpoint[],
  all: readonly Endpoint[],
  localZone: string,
  options: ZoneOptions = {},
): readonly Endpoint[] {
  const minPercent = options.minLocalHealthyPercent ?? DEFAULT_MIN_LOCAL_HEALTHY_PERCENT;
  let split = ready === lastReady ? lastSplit : splits.get(ready);
  if (
    split === undefined ||
    split === null ||
    split.all !== all ||
    split.zone !== localZone ||
    split.minLocalHealthyPercent !== minPercent
  ) {
    split = computeSplit(ready, all, localZone, minPercent);
    splits.set(ready, split);
  }
  lastReady = ready;
  lastSplit = split;
  const local = split.local;
  if (local === null || local === ready) return ready;
  const saturation = options.saturationInflight ?? DEFAULT_SATURATION_INFLIGHT;
  if (saturation === false) return local;
  const localMean = meanInflight(local, split.localCursor);
  const remoteMean = meanInflight(split.remote, split.remoteCursor);
  if (local.length > SAMPLE) split.localCursor = (split.localCursor + SAMPLE) % local.length;
  if (split.remote.length > SAMPLE) split.remoteCursor = (split.remoteCursor + SAMPLE) % split.remote.length;
  return localMean - remoteMean > saturation ? ready : local;
}

/**
 * Checks and normalizes the `zoneAware` client option: `{ zone, minLocalHealthyPercent?,
 * saturationInflight? }`, or `false`/`undefined` (off). Throws `InvalidOptionsError` naming the
 * option.
 * @param option the option's path in messages (default `zoneAware`)
 * @example normalizeZoneOptions({ zone: process.env.ZONE }) // { zone, minLocalHealthyPercent: 70, saturationInflight: 8 }
 */
export function normalizeZoneOptions(value: unknown, option = "zoneAware"): ZoneAwareConfig | undefined {
  if (value === undefined || value === false) return undefined;
  if (!isPlainObject(value))
    return fail(
      option,
      value,
      "{ zone: string, minLocalHealthyPercent?: number, saturationInflight?: number | false } or false",
    );
  checkKeys(value, ["zone", "minLocalHealthyPercent", "saturationInflight"], option);
  const {
    zone,
    minLocalHealthyPercent = DEFAULT_MIN_LOCAL_HEALTHY_PERCENT,
    saturationInflight = DEFAULT_SATURATION_INFLIGHT,
  } = value;
  if (typeof zone !== "string" || zone === "")
    fail(`${option}.zone`, zone, "a non-empty string (the zone this process runs in)");
  if (typeof minLocalHealthyPercent !== "number" || !(minLocalHealthyPercent >= 0 && minLocalHealthyPercent <= 100)) {
    fail(`${option}.minLocalHealthyPercent`, minLocalHealthyPercent, "a percentage from 0 to 100");
  }
  if (
    saturationInflight !== false &&
    (typeof saturationInflight !== "number" || !(saturationInflight >= 0) || !Number.isFinite(saturationInflight))
  ) {
    fail(
      `${option}.saturationInflight`,
      saturationInflight,
      "a number of requests in flight ≥ 0, or false (never spill for load)",
    );
  }
  return Object.freeze({ zone, minLocalHealthyPercent, saturationInflight });
}

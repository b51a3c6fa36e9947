/**
 * The OpenTelemetry metrics SDK for tests: a meter provider whose reader collects when the test
 * asks (no export timer), and lookups over what it collected.
 */
import { MeterProvider, MetricReader, type DataPoint, type MetricData } from "@opentelemetry/sdk-metrics";

/** Collects only on `collect()`: deterministic, no interval. */
export class ManualReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface TestMeters {
  readonly provider: MeterProvider;
  readonly reader: ManualReader;
  /** The metrics of the `weft` scope, collected now. */
  collect(): Promise<readonly MetricData[]>;
}

export function testMeters(): TestMeters {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    reader,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw new AggregateError(errors, "metrics collection failed");
      return resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "weft").flatMap((s) => s.metrics);
    },
  };
}

/** The metric named `name`, or an error listing the names there are. */
export function metric(collected: readonly MetricData[], name: string): MetricData {
  const found = collected.find((m) => m.descriptor.name === name);
  if (found === undefined)
    throw new Error(`no metric ${name}; collected: ${collected.map((m) => m.descriptor.name).join(", ")}`);
  return found;
}

/** The data points of the metric named `name`. */
export function points(collected: readonly MetricData[], name: string): readonly DataPoint<unknown>[] {
  return metric(collected, name).dataPoints;
}

/** The value of the one point of `name` whose attributes include `attributes`. */
export function valueOf(collected: readonly MetricData[], name: string, attributes: Record<string, unknown>): unknown {
  const matching = points(collected, name).filter((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  );
  if (matching.length !== 1) throw new Error(`${name}: ${matching.length} points match ${JSON.stringify(attributes)}`);
  return matching[0]?.value;
}

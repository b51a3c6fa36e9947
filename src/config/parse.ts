/**
 * A config document's text → the document: YAML 1.2 (the `yaml` package), of which JSON is a
 * subset, so one parser reads both and an operator writes whichever they like.
 *
 * Stricter than plain YAML where a silent loss would hide an operator's mistake: a duplicate key
 * (the second would silently win), a key that is not a string (`1:`, `true:`, `? [a]` would be
 * stringified into an object key nobody wrote) and several documents in one text are errors,
 * each naming the line and column. YAML 1.2, not 1.1: `no` and `on` are strings, not booleans.
 * What the document must contain is the client's to check, with its own messages — except that
 * an empty text (or one of comments only) is `{}`: no overrides.
 */
import { isCollection, isMap, isScalar, LineCounter, parseDocument, visit, type Node } from "yaml";

/**
 * Parses a config document. Throws an Error naming `where` and the line and column of the first
 * problem.
 * @param where Names the text in the message, e.g. a file path or `etcd key /weft/config/catalog rev 7`.
 * @example parseConfigText("timeout:\n  totalMs: 2000\n", "catalog.yaml") // { timeout: { totalMs: 2000 } }
 * @example parseConfigText("", "catalog.yaml") // {}
 */
export function parseConfigText(text: string, where: string): unknown {
  const lines = new LineCounter();
  // prettyErrors off: the message is ours, on one line (it goes into a warning). resolveKnownTags
  // off: `!!binary`, `!!set`, `!!timestamp` (YAML 1.1 types) stay strings, so a document holds
  // only what JSON can.
  const doc = parseDocument(text, {
    version: "1.2",
    uniqueKeys: true,
    resolveKnownTags: false,
    prettyErrors: false,
    lineCounter: lines,
  });
  const at = (offset: number): string => {
    const { line, col } = lines.linePos(offset);
    return `at line ${line}, column ${col}`;
  };
  const first = doc.errors[0];
  if (first !== undefined) {
    const problem = first.code === "MULTIPLE_DOCS" ? "more than one document (a second `---` or `...`)" : first.message;
    throw new Error(`${where} does not parse: ${problem} ${at(first.pos[0])}`);
  }
  if (doc.contents === null) return {};
  let badKey: { key: unknown; offset: number } | undefined;
  visit(doc, {
    Pair(_, pair) {
      const key = pair.key as Node | null;
      if (isScalar(key) && typeof key.value === "string") return undefined;
      // An empty key (`: 1`) has no node: point at its value.
      const offset = key?.range?.[0] ?? (pair.value as Node | null)?.range?.[0] ?? 0;
      badKey = { key: isScalar(key) ? key.value : key, offset };
      return visit.BREAK;
    },
  });
  if (badKey !== undefined) {
    throw new Error(`${where} does not parse: the key ${describeKey(badKey.key)} is not a string ${at(badKey.offset)}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

function describeKey(key: unknown): string {
  if (key === null || key === undefined) return "null";
  if (isMap(key)) return "(a mapping)";
  if (isCollection(key)) return "(a sequence)";
  return typeof key === "object" ? "(an alias)" : JSON.stringify(key);
}

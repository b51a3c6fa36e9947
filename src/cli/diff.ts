/**
 * A line diff for `weft config diff`: the longest common subsequence of the two texts' lines
 * (the classic dynamic programme, O(n·m) in the lines that differ once the common head and tail
 * are set aside — config documents are hundreds of lines, not millions), printed as unified-diff
 * hunks with three lines of context. Pure: text in, text out.
 */

export interface DiffLine {
  readonly kind: " " | "-" | "+";
  readonly text: string;
}

/**
 * The lines of `a` and `b` in order, each kept (" "), removed from `a` ("-") or added in `b` ("+").
 * @example lineDiff(["a", "b"], ["a", "c"]) // [" a", "-b", "+c"] as { kind, text }
 */
export function lineDiff(a: readonly string[], b: readonly string[]): DiffLine[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  // lcs[i][j]: the length of the longest common subsequence of x[i..] and y[j..].
  const lcs = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const below = lcs[i + 1] as Uint32Array;
    for (let j = y.length - 1; j >= 0; j--)
      row[j] = x[i] === y[j] ? (below[j + 1] as number) + 1 : Math.max(below[j] as number, row[j + 1] as number);
  }
  const out: DiffLine[] = a.slice(0, head).map((text) => ({ kind: " ", text }));
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push({ kind: " ", text: x[i++] as string });
      j++;
    } else if (i < x.length && (j === y.length || (lcs[i + 1]?.[j] as number) >= (lcs[i]?.[j + 1] as number))) {
      // Removals before additions, as diff(1) prints a change.
      out.push({ kind: "-", text: x[i++] as string });
    } else {
      out.push({ kind: "+", text: y[j++] as string });
    }
  }
  for (const text of a.slice(a.length - tail)) out.push({ kind: " ", text });
  return out;
}

/**
 * Unified-diff hunks (`@@ -from,count +from,count @@`) of `lines`, each change with `context`
 * unchanged lines around it; "" when nothing changed.
 */
export function formatHunks(lines: readonly DiffLine[], context = 3): string {
  const changed = lines.flatMap((line, index) => (line.kind === " " ? [] : [index]));
  if (changed.length === 0) return "";
  // Line numbers in the old and new text before each line.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 1;
  let n = 1;
  for (const line of lines) {
    oldAt.push(o);
    newAt.push(n);
    if (line.kind !== "+") o++;
    if (line.kind !== "-") n++;
  }
  const out: string[] = [];
  let index = 0;
  while (index < changed.length) {
    const start = Math.max(0, (changed[index] as number) - context);
    let end = Math.min(lines.length, (changed[index] as number) + context + 1);
    // Changes closer than twice the context share a hunk.
    while (index + 1 < changed.length && (changed[index + 1] as number) - context <= end) {
      index++;
      end = Math.min(lines.length, (changed[index] as number) + context + 1);
    }
    index++;
    const hunk = lines.slice(start, end);
    const oldCount = hunk.filter((l) => l.kind !== "+").length;
    const newCount = hunk.filter((l) => l.kind !== "-").length;
    out.push(
      `@@ -${oldCount === 0 ? (oldAt[start] as number) - 1 : oldAt[start]},${oldCount} +${newCount === 0 ? (newAt[start] as number) - 1 : newAt[start]},${newCount} @@`,
    );
    for (const line of hunk) out.push(`${line.kind}${line.text}`);
  }
  return `${out.join("\n")}\n`;
}

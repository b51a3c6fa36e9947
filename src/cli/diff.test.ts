import { describe, expect, it } from "vitest";
import { formatHunks, lineDiff } from "./diff.js";

const show = (a: string[], b: string[]): string[] => lineDiff(a, b).map((l) => `${l.kind}${l.text}`);

describe("lineDiff", () => {
  it("keeps what both have and marks what was removed and added, removals first", () => {
    expect(show(["a", "b", "c"], ["a", "x", "c"])).toEqual([" a", "-b", "+x", " c"]);
    expect(show(["a", "b"], ["a", "b"])).toEqual([" a", " b"]);
    expect(show([], ["a"])).toEqual(["+a"]);
    expect(show(["a"], [])).toEqual(["-a"]);
  });

  it("finds the longest common subsequence, not just the common head and tail", () => {
    // LCS of a b c a b b a / c b a b a c: 4 lines kept.
    const diff = lineDiff(["a", "b", "c", "a", "b", "b", "a"], ["c", "b", "a", "b", "a", "c"]);
    expect(diff.filter((l) => l.kind === " ")).toHaveLength(4);
    expect(diff.filter((l) => l.kind !== "+").map((l) => l.text)).toEqual(["a", "b", "c", "a", "b", "b", "a"]);
    expect(diff.filter((l) => l.kind !== "-").map((l) => l.text)).toEqual(["c", "b", "a", "b", "a", "c"]);
  });
});

describe("formatHunks", () => {
  const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);

  it("prints nothing when nothing changed", () => {
    expect(formatHunks(lineDiff(before, before))).toBe("");
  });

  it("prints unified hunks with three lines of context, numbered in each text", () => {
    const after = [...before];
    after[4] = "line five";
    after.splice(15, 1);
    expect(formatHunks(lineDiff(before, after))).toBe(
      [
        "@@ -2,7 +2,7 @@",
        " line 2",
        " line 3",
        " line 4",
        "-line 5",
        "+line five",
        " line 6",
        " line 7",
        " line 8",
        "@@ -13,7 +13,6 @@",
        " line 13",
        " line 14",
        " line 15",
        "-line 16",
        " line 17",
        " line 18",
        " line 19",
        "",
      ].join("\n"),
    );
  });

  it("joins changes whose context overlaps into one hunk", () => {
    const after = [...before];
    after[4] = "five";
    after[9] = "ten";
    const text = formatHunks(lineDiff(before, after));
    expect(text.match(/^@@/gm)).toHaveLength(1);
    expect(text.startsWith("@@ -2,12 +2,12 @@\n")).toBe(true);
  });

  it("numbers an addition to an empty text from 0", () => {
    expect(formatHunks(lineDiff([], ["{", "}"]))).toBe("@@ -0,0 +1,2 @@\n+{\n+}\n");
  });
});

// The reference for tests/unit/tokens/js_tiktoken_test.cpp: js-tiktoken's token ids and split
// pieces for every string of a corpus file (one JSON string per line).
//
//   node js_tiktoken_ids.mjs <corpus.jsonl> <output.tsv>
//
// Writes a header line "unicode <version of this Node.js's regex engine> js-tiktoken <version>",
// then for each corpus line four tab-separated fields: the cl100k_base ids, the o200k_base ids,
// and the UTF-8 byte lengths of the cl100k_base and o200k_base split pieces, each space-separated.
// Text is encoded as ordinary text: special-token strings are not special.
import { readFileSync, writeFileSync } from "node:fs";

let lite, cl100k, o200k;
try {
  lite = await import("js-tiktoken/lite");
  cl100k = (await import("js-tiktoken/ranks/cl100k_base")).default;
  o200k = (await import("js-tiktoken/ranks/o200k_base")).default;
} catch (e) {
  console.error(`js-tiktoken is not installed in tests/unit/tokens/node_modules: run scripts/setup.sh (${e.message})`);
  process.exit(2);
}
const version = JSON.parse(
  readFileSync(new URL("node_modules/js-tiktoken/package.json", import.meta.url), "utf8")).version;

const encoder = new TextEncoder();
const encodings = [cl100k, o200k].map((ranks) => ({
  tiktoken: new lite.Tiktoken(ranks),
  pattern: new RegExp(ranks.pat_str, "ug"),
}));

const lines = readFileSync(process.argv[2], "utf8").split("\n");
if (lines.at(-1) === "") lines.pop();
const out = [`unicode ${process.versions.unicode} js-tiktoken ${version}`];
for (const line of lines) {
  const text = JSON.parse(line);
  const ids = encodings.map((e) => e.tiktoken.encode(text, [], []).join(" "));
  const pieces = encodings.map((e) =>
    [...text.matchAll(e.pattern)].map((m) => encoder.encode(m[0]).length).join(" "));
  out.push([...ids, ...pieces].join("\t"));
}
writeFileSync(process.argv[3], out.join("\n") + "\n");

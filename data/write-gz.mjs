// data/write-gz.mjs — what both data scripts write with: gzip at level 9 with a fixed
// header (node writes mtime 0), checked by a round trip, written atomically (temp file +
// rename), and reported with the sha256 of the gzip file and of its contents.
import { createHash } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync, constants } from 'node:zlib';

export function writeGz(outDir, name, plain, die) {
    const bytes = Buffer.from(plain);
    const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
    if (gz.readUInt32LE(4) !== 0) die(`${name}: gzip header mtime is not 0`);
    if (Buffer.compare(gunzipSync(gz), bytes) !== 0) die(`${name}: gzip round trip failed`);
    const path = join(outDir, name);
    const tmp = `${path}.tmp.${process.pid}`;
    try {
        writeFileSync(tmp, gz);
        renameSync(tmp, path);
    } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
    }
    const sha = (b) => createHash('sha256').update(b).digest('hex');
    console.log(`wrote ${path} (${gz.length} bytes) sha256 ${sha(gz)}, uncompressed ${sha(bytes)}`);
}

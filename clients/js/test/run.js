// Runs the package's tests with Node's test runner. It builds the
// switchboard binary once for the tests that start real nodes (they find it
// in SWITCHBOARD_BIN), and gives Node 20, which has no global WebSocket,
// its built-in one behind --experimental-websocket.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'switchboard-js-'));
let status = 1;
try {
  const env = { ...process.env };
  if (!env.SWITCHBOARD_BIN) {
    env.SWITCHBOARD_BIN = join(tmp, 'switchboard');
    const build = spawnSync('go', ['build', '-o', env.SWITCHBOARD_BIN, './cmd/switchboard'], { cwd: repo, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('go build ./cmd/switchboard failed');
  }
  const files = readdirSync(here).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(here, f));
  const flags = typeof globalThis.WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const run = spawnSync(process.execPath, [...flags, '--test', ...files], { env, stdio: 'inherit' });
  status = run.status ?? 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);

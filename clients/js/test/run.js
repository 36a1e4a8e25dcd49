// Runs the package's tests with Node's test runner. It builds the
// switchboard binary once for the tests that start real nodes (they find it
// in SWITCHBOARD_BIN), and gives Node 20, which has no global WebSocket,
// its built-in one behind --experimental-websocket. SWITCHBOARD_SKIP_REDIS=1
// skips, on purpose, the files that start nodes and Redis (as for the Go
// tests); otherwise a missing redis-server fails them.
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
  const needServers = new Set(['client.test.js', 'auth.test.js']);
  const skipServers = env.SWITCHBOARD_SKIP_REDIS === '1';
  if (skipServers) console.log(`SWITCHBOARD_SKIP_REDIS=1: skipping ${[...needServers].join(', ')}`);
  if (!env.SWITCHBOARD_BIN && !skipServers) {
    env.SWITCHBOARD_BIN = join(tmp, 'switchboard');
    const build = spawnSync('go', ['build', '-o', env.SWITCHBOARD_BIN, './cmd/switchboard'], { cwd: repo, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('go build ./cmd/switchboard failed');
  }
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.test.js') && !(skipServers && needServers.has(f)))
    .sort().map((f) => join(here, f));
  const flags = typeof globalThis.WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const run = spawnSync(process.execPath, [...flags, '--test', ...files], { env, stdio: 'inherit' });
  status = run.status ?? 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);

// Real servers for the tests: a redis-server and switchboard nodes, each a
// child process on a free loopback port, killed when the test file ends.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after } from 'node:test';

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
after(async () => {
  await Promise.all([...children].map((c) => kill(c)));
});

function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGKILL');
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls cond every 20 ms until it returns true, or fails after timeoutMs. */
export async function waitFor(cond, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => resolve(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

/** Starts a throwaway redis-server; returns its URL. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.add(child);
  child.on('error', (err) => {
    throw new Error(`redis-server: ${err.message} (is it installed?)`);
  });
  await waitFor(() => redisPing(port), 'redis-server to answer PING');
  return `redis://127.0.0.1:${port}/0`;
}

/**
 * Starts a switchboard node with env added; resolves once it is ready.
 * Returns {http, ws, kill, output}.
 */
export async function startNode(env) {
  const bin = process.env.SWITCHBOARD_BIN;
  if (!bin) throw new Error('SWITCHBOARD_BIN is not set: run the tests with npm test');
  const child = spawn(bin, [], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let output = '';
  const addr = await new Promise((resolve, reject) => {
    let rest = '';
    child.stderr.on('data', (d) => {
      output += d;
      rest += d;
      let i;
      while ((i = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'listening') resolve(rec.addr);
        } catch {
          // not a log record
        }
      }
    });
    child.on('exit', () => reject(new Error(`node exited before listening:\n${output}`)));
    child.on('error', reject);
  });
  const http = `http://${addr}`;
  await waitFor(async () => {
    try {
      return (await fetch(`${http}/readyz`)).ok;
    } catch {
      return false;
    }
  }, `${http}/readyz`);
  return {
    http,
    ws: `ws://${addr}/websockets`,
    kill: () => kill(child),
    output: () => output,
  };
}

/** Records every value an emitter emits for event. */
export function record(emitter, event) {
  const seen = [];
  emitter.on(event, (v) => seen.push(v));
  return seen;
}

// Shared helpers for the Node interop tests (@grpc/grpc-js + @grpc/proto-loader).
//
// startServer() runs a server binary on 127.0.0.1 with a free port, waits until a
// health Check answers, and stop() ends it by its own PID (SIGTERM, bounded wait,
// SIGKILL as a last resort). Every wait is bounded in time.
'use strict';

const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const SRC = path.resolve(__dirname, '..', '..');
const GRPC_PROTO_ROOT = '/usr/share/grpc-proto';
const LOADER_OPTS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [GRPC_PROTO_ROOT, path.join(SRC, 'tests', 'proto'), '/usr/include'],
};

const HERALD_SERVICES = [
  'herald.v1.ContentService',
  'herald.v1.SchedulingService',
  'herald.v1.LearningService',
  'herald.v1.OpsService',
];
const EXPECTED_SERVICES = [
  ...HERALD_SERVICES,
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
].sort();

// heraldd under test: no admin HTTP listener (its default port would clash
// between concurrent servers); DATABASE_URL/REDIS_URL come from the environment.
const HERALDD_ENV = { HERALD_ADMIN_LISTEN: '' };

function binPath(name) {
  const dir = process.env.HERALD_BIN_DIR || path.join(SRC, 'build', 'bin');
  const p = path.join(dir, name);
  fs.accessSync(p, fs.constants.X_OK);
  return p;
}

function load(protoFile) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, LOADER_OPTS));
}

const protos = {
  health: () => load('grpc/health/v1/health.proto').grpc.health.v1,
  test: () => load('herald/test/v1/test.proto').herald.test.v1,
  reflection: (v) => load(`grpc/reflection/${v}/reflection.proto`).grpc.reflection[v],
};

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function deadline(ms) {
  return new Date(Date.now() + ms);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Promisified unary call on a typed client; resolves { err, reply, status }.
function unary(client, method, req, opts = {}) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(opts.metadata || {})) md.set(k, v);
    let status = null;
    let result = null;
    const done = () => {
      if (status && result) resolve({ ...result, status });
    };
    const call = client[method](req, md, { deadline: deadline(opts.timeoutMs || 5000) },
      (err, reply) => {
        result = { err, reply };
        done();
      });
    call.on('status', (s) => {
      status = s;
      done();
    });
  });
}

// A raw unary call with bytes in and out (for garbage payloads, unknown paths).
function rawUnary(client, pathName, bytes, timeoutMs = 5000) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(pathName, (b) => b, (b) => b, bytes, new grpc.Metadata(),
      { deadline: deadline(timeoutMs) }, (err, reply) => resolve({ err, reply }));
  });
}

// Resolves the next 'data' message of a stream, or rejects on error/end/timeout.
function nextMessage(call, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(t);
      call.off('data', onData);
      call.off('error', onError);
      call.off('end', onEnd);
    };
    const onData = (m) => {
      cleanup();
      call.pause();
      resolve(m);
    };
    const onError = (e) => {
      cleanup();
      reject(e);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('stream ended'));
    };
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`no message in ${timeoutMs} ms`));
    }, timeoutMs);
    call.on('data', onData);
    call.on('error', onError);
    call.on('end', onEnd);
    call.resume();
  });
}

// Resolves the error (or null on a clean end) that ends a stream, bounded.
function streamEnd(call, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`stream still open after ${timeoutMs} ms`)),
      timeoutMs);
    call.on('error', (e) => {
      clearTimeout(t);
      resolve(e);
    });
    call.on('status', (s) => {
      if (s.code === grpc.status.OK) {
        clearTimeout(t);
        resolve(null);
      }
    });
    call.on('data', () => {});
    call.resume();
  });
}

class Server {
  constructor(argv, { portFile = false, env = {} } = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-interop-js-'));
    this.logPath = path.join(this.dir, 'server.log');
    this.argv = argv;
    this.portFile = portFile ? path.join(this.dir, 'port') : null;
    this.env = env;
    this.exit = null;
  }

  async start(timeoutMs = 30000) {
    let argv = [...this.argv];
    if (this.portFile) {
      argv.push('--listen', '127.0.0.1:0', '--port-file', this.portFile);
    } else {
      this.port = await freePort();
      argv.push('--listen', `127.0.0.1:${this.port}`);
    }
    const log = fs.openSync(this.logPath, 'w');
    this.proc = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.env },
    });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, sig) => {
        this.exit = { code, signal: sig, at: Date.now() };
        resolve(this.exit);
      });
    });
    const end = Date.now() + timeoutMs;
    while (this.portFile && !this.port) {
      this.checkAlive();
      if (Date.now() > end) throw new Error(`no port file after ${timeoutMs} ms`);
      try {
        const txt = fs.readFileSync(this.portFile, 'utf8').trim();
        if (txt) this.port = parseInt(txt, 10);
      } catch (e) {
        // not written yet
      }
      await sleep(20);
    }
    this.target = `127.0.0.1:${this.port}`;
    const Health = protos.health().Health;
    for (;;) {
      this.checkAlive();
      if (Date.now() > end) throw new Error(`server not answering after ${timeoutMs} ms`);
      const c = new Health(this.target, grpc.credentials.createInsecure());
      const r = await unary(c, 'Check', { service: '' }, { timeoutMs: 1000 });
      c.close();
      if (!r.err || ![grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(r.err.code)) {
        return this;
      }
      await sleep(50);
    }
  }

  checkAlive() {
    if (this.exit) {
      throw new Error(`server exited early: ${JSON.stringify(this.exit)}\n${this.logTail()}`);
    }
  }

  logTail(n = 40) {
    try {
      const lines = fs.readFileSync(this.logPath, 'utf8').split('\n');
      return `--- server log (${this.argv.join(' ')}) ---\n${lines.slice(-n).join('\n')}`;
    } catch (e) {
      return '';
    }
  }

  signal(sig = 'SIGTERM') {
    if (!this.exit) process.kill(this.proc.pid, sig);
  }

  async wait(timeoutMs) {
    if (this.exit) return this.exit;
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    return r;
  }

  // SIGTERM, bounded wait; returns the exit code (SIGKILL and -9 on timeout).
  async stop(timeoutMs = 15000) {
    if (!this.proc) return null;
    this.signal('SIGTERM');
    const e = await this.wait(timeoutMs);
    if (!e) {
      this.signal('SIGKILL');
      await this.wait(5000);
      return -9;
    }
    return e.code;
  }

  cleanup() {
    if (this.proc && !this.exit) process.kill(this.proc.pid, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Stops the server and asserts it exited 0.
async function stopCleanly(srv, timeoutMs) {
  if (!srv) return;
  const code = await srv.stop(timeoutMs);
  const tail = srv.logTail();
  srv.cleanup();
  assert.strictEqual(code, 0, `server exited ${code} after SIGTERM\n${tail}`);
}

module.exports = {
  grpc,
  protoLoader,
  protos,
  binPath,
  Server,
  stopCleanly,
  unary,
  rawUnary,
  nextMessage,
  streamEnd,
  sleep,
  deadline,
  HERALD_SERVICES,
  EXPECTED_SERVICES,
  LOADER_OPTS,
  HERALDD_ENV,
};

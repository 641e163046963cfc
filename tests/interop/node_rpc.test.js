// Node @grpc/grpc-js against rpc_testd: health, errors, deadlines, streaming.
// One server for the file; it must exit 0 on SIGTERM at the end.
'use strict';

const assert = require('node:assert');
const { after, before, describe, it } = require('node:test');

const c = require('./common');

const { grpc } = c;
const SVC = 'herald.test.v1.TestService';
let srv;
let health;
let test;

before(async () => {
  srv = await new c.Server([c.binPath('rpc_testd'), '--workers', '2', '--grace-ms', '3000'],
    { portFile: true }).start();
  const creds = grpc.credentials.createInsecure();
  health = new (c.protos.health().Health)(srv.target, creds);
  test = new (c.protos.test().TestService)(srv.target, creds);
});

after(async () => {
  if (health) health.close();
  if (test) test.close();
  await c.stopCleanly(srv, 10000);
});

const check = (service) => c.unary(health, 'Check', { service });
const echo = (req, opts) => c.unary(test, 'Echo', req, opts);

function watch(service, timeoutMs) {
  const call = health.Watch({ service }, new grpc.Metadata(), { deadline: c.deadline(timeoutMs) });
  call.on('error', () => {}); // errors are read through nextMessage/streamEnd
  return call;
}

describe('health', { timeout: 30000 }, () => {
  it('Check answers SERVING for the registered names', async () => {
    for (const name of ['', 'liveness', 'readiness', SVC]) {
      const r = await check(name);
      assert.ifError(r.err);
      assert.strictEqual(r.reply.status, 'SERVING', name);
    }
  });

  it('Check on an unknown name is NOT_FOUND', async () => {
    const r = await check('no.such.Service');
    assert.strictEqual(r.err && r.err.code, grpc.status.NOT_FOUND);
  });

  it('Watch sees pushed changes', async () => {
    const call = watch(SVC, 20000);
    try {
      assert.strictEqual((await c.nextMessage(call)).status, 'SERVING');
      for (const want of ['NOT_SERVING', 'SERVING']) {
        const r = await echo({ message: `health:${SVC}=${want}` });
        assert.ifError(r.err);
        const t0 = Date.now();
        assert.strictEqual((await c.nextMessage(call, 2000)).status, want);
        assert.ok(Date.now() - t0 < 2000);
        assert.strictEqual((await check(SVC)).reply.status, want);
      }
    } finally {
      call.cancel();
      await echo({ message: `health:${SVC}=SERVING` });
    }
  });

  it('Watch on an unknown name gets SERVICE_UNKNOWN and stays open', async () => {
    const t0 = Date.now();
    const call = watch('no.such.Service', 2500);
    assert.strictEqual((await c.nextMessage(call)).status, 'SERVICE_UNKNOWN');
    const err = await c.streamEnd(call, 5000);
    assert.strictEqual(err && err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 >= 2000, `closed after ${Date.now() - t0} ms`);
  });
});

describe('errors', { timeout: 30000 }, () => {
  it('an unknown method is UNIMPLEMENTED in < 100 ms', async () => {
    await check('');
    for (const p of [`/${SVC}/NoSuchMethod`, '/no.such.Service/Method', `/${SVC}/Unbuilt`]) {
      const t0 = process.hrtime.bigint();
      const r = await c.rawUnary(test, p, Buffer.alloc(0));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.strictEqual(r.err && r.err.code, grpc.status.UNIMPLEMENTED, p);
      assert.ok(ms < 100, `${p}: ${ms} ms`);
    }
  });

  it('a deadline shorter than the handler is DEADLINE_EXCEEDED', async () => {
    for (const detach of [false, true]) {
      const t0 = Date.now();
      const r = await echo({ message: 'slow', sleep_ms: 1500, detach }, { timeoutMs: 300 });
      assert.strictEqual(r.err && r.err.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - t0 < 1000);
    }
    const r = await echo({ message: 'after' });
    assert.strictEqual(r.reply.message, 'after');
  });

  it('a handler error carries its message and trailing metadata', async () => {
    const r = await echo({
      fail_code: grpc.status.FAILED_PRECONDITION,
      fail_message: 'post already published',
      trailer_key: 'x-herald-test',
      trailer_value: 'trailer-value-1',
    });
    assert.strictEqual(r.err && r.err.code, grpc.status.FAILED_PRECONDITION);
    assert.strictEqual(r.err.details, 'post already published');
    assert.deepStrictEqual(r.err.metadata.get('x-herald-test'), ['trailer-value-1']);
  });

  it('a garbage payload is INTERNAL', async () => {
    const garbage = Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff]);
    for (const p of [`/${SVC}/Echo`, '/grpc.health.v1.Health/Check']) {
      const r = await c.rawUnary(test, p, garbage);
      assert.strictEqual(r.err && r.err.code, grpc.status.INTERNAL, p);
    }
  });
});

describe('calls', { timeout: 30000 }, () => {
  it('Echo sees metadata, the deadline and x-request-id', async () => {
    const r = await echo({ message: 'héllo' },
      { timeoutMs: 5000, metadata: { 'x-test': 'meta-1', 'x-request-id': 'req-node-1' } });
    assert.ifError(r.err);
    assert.strictEqual(r.reply.message, 'héllo');
    assert.strictEqual(r.reply.metadata_echo, 'meta-1');
    assert.strictEqual(r.reply.request_id, 'req-node-1');
    const left = Number(r.reply.remaining_ms);
    assert.ok(left > 3000 && left <= 5100, `remaining_ms ${left}`); // grpc-timeout rounds up
    assert.deepStrictEqual(r.status.metadata.get('x-request-id'), ['req-node-1']);
  });

  it('server streaming sends every message, then the status', async () => {
    const got = [];
    const call = test.ServerStream({ count: 5, interval_ms: 10 }, new grpc.Metadata(),
      { deadline: c.deadline(10000) });
    call.on('data', (m) => got.push(m));
    assert.strictEqual(await c.streamEnd(call, 10000), null);
    assert.strictEqual(got.length, 5);

    const got2 = [];
    const call2 = test.ServerStream(
      { count: 5, interval_ms: 10, fail_after: 2, fail_code: grpc.status.ABORTED },
      new grpc.Metadata(), { deadline: c.deadline(10000) });
    call2.on('data', (m) => got2.push(m));
    const err = await c.streamEnd(call2, 10000);
    assert.strictEqual(err && err.code, grpc.status.ABORTED);
    assert.strictEqual(got2.length, 2);
  });

  it('client streaming collects every message', async () => {
    const reply = await new Promise((resolve, reject) => {
      const call = test.Collect(new grpc.Metadata(), { deadline: c.deadline(10000) },
        (err, r) => (err ? reject(err) : resolve(r)));
      for (const s of ['ab', 'cd', 'ef']) call.write({ message: s });
      call.end();
    });
    assert.strictEqual(reply.message, 'abcdef');
  });

  it('bidi echoes each message as it arrives', async () => {
    const call = test.Chat(new grpc.Metadata(), { deadline: c.deadline(10000) });
    call.on('error', () => {});
    for (let i = 0; i < 5; i++) {
      call.write({ message: `ping-${i}` });
      assert.strictEqual((await c.nextMessage(call)).message, `ping-${i}`);
    }
    call.end();
    assert.strictEqual(await c.streamEnd(call, 5000), null);
  });
});

// Node @grpc/grpc-js against heraldd: health, reflection v1 and v1alpha, unknown
// methods. Every symbol of every listed service (service, methods, input and
// output types) must resolve through file_containing_symbol, on a fresh stream,
// to files that protobufjs loads into a root with every reference resolved and
// that @grpc/proto-loader turns into a usable package definition.
'use strict';

const assert = require('node:assert');
const { after, before, describe, it } = require('node:test');

const protobuf = require('protobufjs');
const descriptor = require('protobufjs/ext/descriptor');

const c = require('./common');

const { grpc } = c;
let srv;
let health;

before(async () => {
  srv = await new c.Server([c.binPath('heraldd')], { portFile: true, env: c.HERALDD_ENV })
    .start();
  health = new (c.protos.health().Health)(srv.target, grpc.credentials.createInsecure());
});

after(async () => {
  if (health) health.close();
  await c.stopCleanly(srv, 30000);
});

const check = (service) => c.unary(health, 'Check', { service });

// Sends reqs on one fresh ServerReflectionInfo stream; resolves the responses.
function reflect(client, reqs, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const out = [];
    const call = client.ServerReflectionInfo(new grpc.Metadata(),
      { deadline: c.deadline(timeoutMs) });
    call.on('data', (m) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const r of reqs) call.write(r);
    call.end();
  });
}

// Serialized FileDescriptorProtos -> a serialized FileDescriptorSet (field 1).
function fileSet(blobs) {
  const w = protobuf.Writer.create();
  for (const b of blobs) w.uint32((1 << 3) | 2).bytes(b);
  return Buffer.from(w.finish());
}

async function filesFor(client, symbol) {
  const [resp] = await reflect(client, [{ file_containing_symbol: symbol }]);
  assert.ok(resp, `no response for ${symbol}`);
  assert.ok(!resp.error_response,
    `${symbol}: ${resp.error_response && resp.error_response.error_message}`);
  return resp.file_descriptor_response.file_descriptor_proto;
}

// A protobufjs root from the files, every type reference resolved (throws when a
// file or a dependency is missing), and proto-loader's view of the same files.
function loadFiles(blobs) {
  const set = fileSet(blobs);
  const root = protobuf.Root.fromDescriptor(descriptor.FileDescriptorSet.decode(set));
  root.resolveAll();
  const pkgDef = c.protoLoader.loadFileDescriptorSetFromBuffer(set, c.LOADER_OPTS);
  return { root, pkgDef };
}

describe('health', { timeout: 60000 }, () => {
  it('Check answers SERVING', async () => {
    for (const name of ['', 'liveness']) {
      const r = await check(name);
      assert.ifError(r.err);
      assert.strictEqual(r.reply.status, 'SERVING', name);
    }
    // readiness and the services may wait for the database: bounded poll.
    for (const name of ['readiness', ...c.HERALD_SERVICES]) {
      const end = Date.now() + 20000;
      let r = await check(name);
      while ((r.err || r.reply.status !== 'SERVING') && Date.now() < end) {
        await c.sleep(200);
        r = await check(name);
      }
      assert.ifError(r.err);
      assert.strictEqual(r.reply.status, 'SERVING', name);
    }
  });

  it('Check on an unknown name is NOT_FOUND', async () => {
    const r = await check('herald.v1.NoSuchService');
    assert.strictEqual(r.err && r.err.code, grpc.status.NOT_FOUND);
  });

  it('Watch on an unknown name gets SERVICE_UNKNOWN and stays open', async () => {
    const t0 = Date.now();
    const call = health.Watch({ service: 'herald.v1.NoSuchService' }, new grpc.Metadata(),
      { deadline: c.deadline(2500) });
    call.on('error', () => {});
    assert.strictEqual((await c.nextMessage(call)).status, 'SERVICE_UNKNOWN');
    const err = await c.streamEnd(call, 5000);
    assert.strictEqual(err && err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 >= 2000, `closed after ${Date.now() - t0} ms`);
  });
});

describe('errors', { timeout: 30000 }, () => {
  it('an unknown method is UNIMPLEMENTED in < 100 ms', async () => {
    await check('');
    for (const p of ['/herald.v1.ContentService/NoSuchMethod', '/no.such.Service/Method']) {
      const t0 = process.hrtime.bigint();
      const r = await c.rawUnary(health, p, Buffer.alloc(0));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.strictEqual(r.err && r.err.code, grpc.status.UNIMPLEMENTED, p);
      assert.ok(ms < 100, `${p}: ${ms} ms`);
    }
  });

  it('a garbage payload is INTERNAL', async () => {
    const r = await c.rawUnary(health, '/grpc.health.v1.Health/Check',
      Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff]));
    assert.strictEqual(r.err && r.err.code, grpc.status.INTERNAL);
  });
});

for (const version of ['v1', 'v1alpha']) {
  describe(`reflection ${version}`, { timeout: 120000 }, () => {
    let client;
    before(() => {
      client = new (c.protos.reflection(version).ServerReflection)(srv.target,
        grpc.credentials.createInsecure());
    });
    after(() => client && client.close());

    it('lists exactly the expected services', async () => {
      const [resp] = await reflect(client, [{ list_services: '' }]);
      const names = resp.list_services_response.service.map((s) => s.name).sort();
      assert.deepStrictEqual(names, c.EXPECTED_SERVICES);
    });

    it('resolves every symbol of every service', async () => {
      const [resp] = await reflect(client, [{ list_services: '' }]);
      let checked = 0;
      for (const { name } of resp.list_services_response.service) {
        const { root, pkgDef } = loadFiles(await filesFor(client, name));
        const svc = root.lookupService(name);
        assert.ok(pkgDef[name], `proto-loader has no ${name}`);
        const methods = Object.values(svc.methods);
        assert.ok(methods.length > 0, name);
        for (const m of methods) {
          const mName = `${name}.${m.name}`;
          const inName = m.resolvedRequestType.fullName.replace(/^\./, '');
          const outName = m.resolvedResponseType.fullName.replace(/^\./, '');
          {
            const r = loadFiles(await filesFor(client, mName));
            assert.ok(r.root.lookupService(name).methods[m.name], mName);
            assert.ok(r.pkgDef[name][m.name], `proto-loader has no ${mName}`);
          }
          for (const t of [inName, outName]) {
            const r = loadFiles(await filesFor(client, t));
            assert.strictEqual(r.root.lookupType(t).fullName, `.${t}`);
            assert.ok(r.pkgDef[t], `proto-loader has no ${t}`);
          }
          checked += 3;
        }
      }
      assert.ok(checked > 30, `only ${checked} symbols`);
    });

    it('answers errors in a stream that stays open', async () => {
      const resps = await reflect(client, [
        { file_containing_symbol: 'herald.v1.NoSuchThing' },
        { file_by_filename: 'grpc/health/v1/health.proto' },
        { list_services: '' },
      ]);
      assert.strictEqual(resps.length, 3);
      assert.strictEqual(resps[0].error_response.error_code, grpc.status.NOT_FOUND);
      const { root } = loadFiles(resps[1].file_descriptor_response.file_descriptor_proto);
      assert.ok(root.lookupService('grpc.health.v1.Health'));
      assert.strictEqual(resps[2].list_services_response.service.length,
        c.EXPECTED_SERVICES.length);
    });
  });
}

// health_server.js - reference server for bench/run: grpc.health.v1.Health/Check
// on Node's @grpc/grpc-js (one event-loop thread), answering SERVING for any
// service name.
//
//   node bench/ref/health_server.js [--listen HOST:PORT] [--port-file FILE]
//
// The modules come from tests/interop (npm ci there, as scripts/deps does);
// HERALD_NODE_DIR names another directory holding node_modules. health.proto
// comes from Debian's grpc-proto. SIGTERM/SIGINT: graceful shutdown, exit 0.
'use strict';

const fs = require('fs');
const path = require('path');

const modDir = process.env.HERALD_NODE_DIR || path.join(__dirname, '..', '..', 'tests', 'interop');
const load = (name) => require(require.resolve(name, { paths: [modDir] }));
const grpc = load('@grpc/grpc-js');
const protoLoader = load('@grpc/proto-loader');

let listen = '127.0.0.1:0';
let portFile = '';
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--listen' && i + 1 < process.argv.length) listen = process.argv[++i];
  else if (a === '--port-file' && i + 1 < process.argv.length) portFile = process.argv[++i];
  else {
    console.error('usage: node health_server.js [--listen HOST:PORT] [--port-file FILE]');
    process.exit(2);
  }
}

const def = protoLoader.loadSync('grpc/health/v1/health.proto', {
  includeDirs: [process.env.HERALD_GRPC_PROTO_DIR || '/usr/share/grpc-proto'],
  keepCase: true,
  enums: String,
  defaults: true,
});
const health = grpc.loadPackageDefinition(def).grpc.health.v1;

const server = new grpc.Server();
server.addService(health.Health.service, {
  Check: (call, callback) => callback(null, { status: 'SERVING' }),
  Watch: (call) => {
    call.write({ status: 'SERVING' });
  },
});

server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`health_server.js: cannot listen on ${listen}: ${err.message}`);
    process.exit(1);
  }
  if (portFile) {
    fs.writeFileSync(portFile + '.tmp', `${port}\n`);
    fs.renameSync(portFile + '.tmp', portFile);
  }
  console.error(`health_server.js: grpc-js ${require(require.resolve('@grpc/grpc-js/package.json', { paths: [modDir] })).version} serving on port ${port}`);
});

const stop = () => {
  const timer = setTimeout(() => {
    server.forceShutdown();
    process.exit(0);
  }, 2000);
  server.tryShutdown(() => {
    clearTimeout(timer);
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// loopback.cjs — preloaded (node --require) by bench/gateway.sh so that the
// Portkey gateway listens on 127.0.0.1 only: its start-server.js passes no
// host to listen(), which would bind every interface (::).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(port[, host][, backlog][, callback]) with the host missing or undefined
  if (typeof args[0] === 'number' && (args.length < 2 || args[1] === undefined || typeof args[1] === 'function')) {
    if (args.length >= 2 && args[1] === undefined) args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};

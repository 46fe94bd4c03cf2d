// SPDX-License-Identifier: GPL-2.0
// Node.js's own sockets (libuv: nonblocking, epoll, writev), the protocol
// of HashEcho.java: each message is an 8-byte big-endian length and that
// many bytes, answered with their SHA-256 (32 bytes).
//   server PORT_FILE CONNS          exits 0 after CONNS connections closed
//   client PORT ROUNDS MAXLEN       ROUNDS messages of 1..MAXLEN random
//                                   bytes, each written in random pieces
//                                   without waiting (Node queues them),
//                                   each answer compared; prints
//                                   "ok=N bad=M", exit 0 when all matched
'use strict';
const net = require('net'), crypto = require('crypto'), fs = require('fs');
const [mode, ...args] = process.argv.slice(2);

function serve(portFile, conns) {
	let closed = 0;
	const srv = net.createServer((s) => {
		let buf = Buffer.alloc(0), need = -1, got = 0, h = null;
		s.on('data', (d) => {
			buf = buf.length ? Buffer.concat([buf, d]) : d;
			for (;;) {
				if (need < 0) {
					if (buf.length < 8)
						return;
					need = Number(buf.readBigUInt64BE(0));
					buf = buf.subarray(8);
					h = crypto.createHash('sha256');
					got = 0;
				}
				const take = Math.min(need - got, buf.length);
				h.update(buf.subarray(0, take));
				buf = buf.subarray(take);
				got += take;
				if (got < need)
					return;
				s.write(h.digest());
				need = -1;
			}
		});
		s.on('error', (e) => { console.error('server: ' + e.message); process.exit(1); });
		s.on('close', () => { if (++closed === conns) srv.close(); });
	});
	srv.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(srv.address().port)));
}

function client(port, rounds, maxLen) {
	let ok = 0, bad = 0, want = null, i = 0, rbuf = Buffer.alloc(0);
	const s = net.connect(port, '127.0.0.1');
	const next = () => {
		if (i++ === rounds) {
			console.log(`ok=${ok} bad=${bad}`);
			s.end();
			process.exitCode = bad === 0 && ok === rounds ? 0 : 1;
			return;
		}
		const d = crypto.randomBytes(1 + crypto.randomInt(maxLen));
		want = crypto.createHash('sha256').update(d).digest();
		const hdr = Buffer.alloc(8);
		hdr.writeBigUInt64BE(BigInt(d.length));
		s.write(hdr);
		for (let off = 0; off < d.length;) {
			const n = Math.min(d.length - off, 1 + crypto.randomInt(70000));
			s.write(d.subarray(off, off + n));
			off += n;
		}
	};
	s.on('connect', next);
	s.on('data', (d) => {
		rbuf = Buffer.concat([rbuf, d]);
		while (rbuf.length >= 32) {
			if (rbuf.subarray(0, 32).equals(want)) ok++; else bad++;
			rbuf = rbuf.subarray(32);
			next();
		}
	});
	s.on('error', (e) => { console.error('client: ' + e.message); process.exit(2); });
}

if (mode === 'server' && args.length === 2)
	serve(args[0], Number(args[1]));
else if (mode === 'client' && args.length === 3)
	client(Number(args[0]), Number(args[1]), Number(args[2]));
else {
	console.error('usage: hash_echo.js server PORT_FILE CONNS | client PORT ROUNDS MAXLEN');
	process.exit(2);
}

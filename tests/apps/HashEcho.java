// SPDX-License-Identifier: GPL-2.0
// Java's own sockets, as Java programs use them (JDK 17):
//   server PORT_FILE CONNS  a java.nio Selector server on a nonblocking
//                           ServerSocketChannel; each accepted channel
//                           (blocking until configureBlocking(false)) is
//                           made nonblocking and served: each message is
//                           an 8-byte big-endian length and that many
//                           bytes, answered with their SHA-256 (32 bytes).
//                           Exits 0 after CONNS connections closed.
//   client PORT ROUNDS MAXLEN MODE
//                           ROUNDS messages of 1..MAXLEN random bytes (a
//                           fixed seed), each written in random pieces,
//                           each answer compared. MODE: timed (a
//                           java.net.Socket, connect() with a timeout and
//                           SO_TIMEOUT reads: the JDK connects nonblocking,
//                           makes the socket blocking again, and
//                           nonblocking at the first timed read), untimed
//                           (connect() without a timeout: blocking at
//                           establishment, nonblocking from the first
//                           timed read on). Prints "ok=N bad=M"; exit 0
//                           when every answer matched.
import java.io.*;
import java.net.*;
import java.nio.*;
import java.nio.channels.*;
import java.nio.file.*;
import java.security.*;
import java.util.*;

public class HashEcho {
	static final class Conn {
		final ByteBuffer hdr = ByteBuffer.allocate(8);
		long need = -1, got;
		MessageDigest md;
		ByteBuffer out;
	}

	static void serve(String portFile, int conns) throws Exception {
		ServerSocketChannel ss = ServerSocketChannel.open();
		ss.bind(new InetSocketAddress("127.0.0.1", 0));
		ss.configureBlocking(false);
		Selector sel = Selector.open();
		ss.register(sel, SelectionKey.OP_ACCEPT);
		Files.writeString(Path.of(portFile), "" + ((InetSocketAddress) ss.getLocalAddress()).getPort());
		ByteBuffer rb = ByteBuffer.allocate(1 << 16);
		int closed = 0;
		while (closed < conns) {
			sel.select();
			for (Iterator<SelectionKey> it = sel.selectedKeys().iterator(); it.hasNext();) {
				SelectionKey k = it.next();
				it.remove();
				if (k.isAcceptable()) {
					SocketChannel c = ss.accept();
					if (c == null)
						continue;
					c.configureBlocking(false);
					c.register(sel, SelectionKey.OP_READ, new Conn());
					continue;
				}
				SocketChannel c = (SocketChannel) k.channel();
				Conn s = (Conn) k.attachment();
				if (k.isWritable()) {
					c.write(s.out);
					if (!s.out.hasRemaining())
						k.interestOps(SelectionKey.OP_READ);
					continue;
				}
				rb.clear();
				if (c.read(rb) < 0) {
					c.close();
					closed++;
					continue;
				}
				rb.flip();
				while (rb.hasRemaining()) {
					if (s.need < 0) {
						while (s.hdr.hasRemaining() && rb.hasRemaining())
							s.hdr.put(rb.get());
						if (s.hdr.hasRemaining())
							break;
						s.hdr.flip();
						s.need = s.hdr.getLong();
						s.hdr.clear();
						s.got = 0;
						s.md = MessageDigest.getInstance("SHA-256");
					}
					int take = (int) Math.min(s.need - s.got, rb.remaining());
					ByteBuffer part = rb.slice();
					part.limit(take);
					s.md.update(part);
					rb.position(rb.position() + take);
					s.got += take;
					if (s.got == s.need) {
						s.out = ByteBuffer.wrap(s.md.digest());
						c.write(s.out);
						if (s.out.hasRemaining())
							k.interestOps(SelectionKey.OP_WRITE);
						s.need = -1;
					}
				}
			}
		}
	}

	static int client(int port, int rounds, int maxLen, String mode) throws Exception {
		Socket s = new Socket();
		InetSocketAddress addr = new InetSocketAddress("127.0.0.1", port);
		if (mode.equals("timed"))
			s.connect(addr, 10000);
		else if (mode.equals("untimed"))
			s.connect(addr);
		else
			throw new IllegalArgumentException("mode: timed or untimed");
		s.setSoTimeout(30000);
		InputStream in = s.getInputStream();
		OutputStream out = s.getOutputStream();
		Random r = new Random(4242);
		int ok = 0, bad = 0;
		for (int i = 0; i < rounds; i++) {
			byte[] d = new byte[1 + r.nextInt(maxLen)];
			r.nextBytes(d);
			byte[] want = MessageDigest.getInstance("SHA-256").digest(d);
			out.write(ByteBuffer.allocate(8).putLong(d.length).array());
			for (int off = 0; off < d.length;) {
				int n = Math.min(d.length - off, 1 + r.nextInt(70000));
				out.write(d, off, n);
				off += n;
			}
			byte[] got = new byte[32];
			for (int g = 0; g < 32;) {
				int n = in.read(got, g, 32 - g);
				if (n < 0)
					throw new EOFException("server closed after " + i + " answers");
				g += n;
			}
			if (Arrays.equals(got, want))
				ok++;
			else
				bad++;
		}
		s.close();
		System.out.println("ok=" + ok + " bad=" + bad);
		return bad == 0 && ok == rounds ? 0 : 1;
	}

	public static void main(String[] a) throws Exception {
		if (a.length == 3 && a[0].equals("server")) {
			serve(a[1], Integer.parseInt(a[2]));
			return;
		}
		if (a.length == 5 && a[0].equals("client"))
			System.exit(client(Integer.parseInt(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]), a[4]));
		System.err.println("usage: HashEcho server PORT_FILE CONNS | client PORT ROUNDS MAXLEN timed|untimed");
		System.exit(2);
	}
}

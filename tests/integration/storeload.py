"""tests/integration/storeload.py — what the durability tests share: traffic from several
connections cut by a SIGKILL (every message that got 250 and every one whose data was sent),
the Maildir copies found per user and tag, and a server whose store fails on demand (the
sanitizer build's fault injection, CLEARMTA_FAULT in src/store/fault.h)."""
import collections
import threading

from harness import (ClientThread, Conn, Server, dot_stuff, is_complete, is_testing_build,
                     make_message, message_tag, queue_id, split_trace_headers, wait_until)


def send_then_kill(case, srv, threads, per_thread, kill_after, timeout, tag_prefix, rcpts_of,
                   body_size_of):
    """threads connections each send per_thread messages (tag "<prefix>-T-III", recipients
    rcpts_of(t, i) as users of example.test, body_size_of(i) bytes of body) until kill_after
    of them got 250; then srv gets SIGKILL. Returns (acked: tag -> (queue id, users),
    attempted: tag -> users for every message whose data was sent, acknowledged at the kill)."""
    lock = threading.Lock()
    acked, attempted = {}, {}
    stop = threading.Event()

    def worker(t):
        try:
            c = Conn(srv.mx_port)
        except OSError:
            return
        try:
            c.expect("220")
            c.ehlo()
            for i in range(per_thread):
                if stop.is_set():
                    return
                tag = "%s-%d-%03d" % (tag_prefix, t, i)
                rcpts = rcpts_of(t, i)
                c.send(b"MAIL FROM:<sender@example.org>\r\n"
                       + b"".join(b"RCPT TO:<%s@example.test>\r\n" % r.encode()
                                  for r in rcpts) + b"DATA\r\n")
                c.expect("250 2.1.0")
                for _ in rcpts:
                    c.expect("250 2.1.5")
                c.expect("354")
                with lock:
                    attempted[tag] = rcpts
                c.send(dot_stuff(make_message(tag, body_size=body_size_of(i))))
                r = c.reply()
                if r.code != 250:
                    raise AssertionError("%s: %r" % (tag, r.text))
                qid = queue_id(r)
                if not qid:
                    raise AssertionError("%s: no queue id in %r" % (tag, r.text))
                with lock:
                    acked[tag] = (qid, rcpts)
        except (OSError, AssertionError) as e:
            # After the kill every connection breaks; before it, nothing may.
            if not stop.is_set():
                raise AssertionError("before the kill: %s" % e) from None
        finally:
            c.close()

    workers = [ClientThread(worker, t) for t in range(threads)]
    for w in workers:
        w.start()
    reached = wait_until(lambda: len(acked) >= kill_after
                         or not any(w.is_alive() for w in workers), timeout, 0.002)
    n_at_kill = len(acked)
    stop.set()  # first: from here on a broken connection is expected
    srv.kill9()
    for w in workers:
        w.join(15)
        case.assertFalse(w.is_alive(), "a client thread hung after the kill")
        if w.error:
            raise w.error
    case.assertTrue(reached and n_at_kill >= kill_after,
                    "only %d messages acknowledged before the kill" % n_at_kill)
    case.assertLess(len(acked), threads * per_thread, "the kill came after all traffic")
    return acked, attempted, n_at_kill


def copies(srv, users, attempted, skip_prefix=None):
    """(found: user -> Counter of tags, problems: messages nobody sent or not whole) over the
    users' Maildirs (new/ and cur/); tags starting with skip_prefix are not looked at."""
    found = collections.defaultdict(collections.Counter)
    problems = []
    for user in users:
        for m in srv.mailbox(user):
            rest = split_trace_headers(m)[2]
            tag = message_tag(rest)
            if skip_prefix and tag.startswith(skip_prefix):
                continue
            if tag not in attempted:
                problems.append("%s: a message nobody sent: %r" % (user, rest[:80]))
            elif not is_complete(rest, tag):
                problems.append("%s: half-written copy of %s (%d bytes)" % (user, tag, len(rest)))
            found[user][tag] += 1
    return found, problems


def fault_server(case, spec):
    """A server whose store fails every call of spec's op; when that stops the server from
    starting (the store syncs at startup too), the first call after startup: "@N" for the
    smallest N that lets it start. A spec with its own "@N" is taken as it is."""
    if not is_testing_build():
        case.skipTest("the binary has no fault injection (not a -DCLEARMTA_TESTING build)")
    tried = []
    tries = [spec] if "@" in spec else [spec] + ["%s@%d" % (spec, n) for n in range(1, 9)]
    for attempt in tries:
        srv = Server(case.mkdtemp(), env={"CLEARMTA_FAULT": attempt})
        srv.start(wait=False)
        try:
            srv.wait_ready()
        except AssertionError:
            srv.stop()
            case.assertEqual(srv.sanitizer_report(), "")
            tried.append(attempt)
            continue
        case.addCleanup(case.finish_server, srv)
        return srv
    case.fail("the server does not start with CLEARMTA_FAULT in %s" % tried)

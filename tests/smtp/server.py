#!/usr/bin/python3
"""A loopback SMTP server for Vigil's tests, on aiosmtpd (Debian's
python3-aiosmtpd).

Listens on 127.0.0.1 on a free port and prints `PORT <n>` on stdout once it
accepts connections. Every accepted message is written to `--dir` as
`NNNN.json` (written to a temporary name, then renamed, so a reader never
sees half a file) with the envelope, the raw data and the parsed message:

    {"mail_from", "rcpt_tos", "data", "helo", "login", "tls", "peer_port",
     "headers": [[name, decoded value], ...], "date_epoch",
     "content_type", "parts": [{"content_type", "body"}, ...]}

(bodies decoded from their transfer encoding, with `\n` line breaks).

Failure modes exercise the client's error handling: `--rcpt-reply` answers
every RCPT with a fixed reply (say a 550); `--fail-first N` answers the
first N commands named by `--fail-at` (mail, rcpt or data) with
`--fail-reply` (say a 451), then accepts.
"""

import argparse
import asyncio
import email
import email.policy
import email.utils
import json
import os
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:
    sys.stderr.write("aiosmtpd is missing: apt-get install python3-aiosmtpd\n")
    sys.exit(3)


class Recorder:
    def __init__(self, args):
        self.args = args
        self.failures_left = args.fail_first
        self.count = 0

    def _fail(self, stage):
        if self.args.fail_at == stage and self.failures_left > 0:
            self.failures_left -= 1
            return self.args.fail_reply
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._fail("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.rcpt_reply:
            return self.args.rcpt_reply
        reply = self._fail("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._fail("data")
        if reply:
            return reply
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [
            {
                "content_type": part.get_content_type(),
                "body": part.get_content().replace("\r\n", "\n"),
            }
            for part in message.walk()
            if not part.is_multipart()
        ]
        date = message["Date"]
        auth = session.auth_data
        login = getattr(auth, "login", None)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", "replace"),
            "helo": session.host_name,
            "login": login.decode() if isinstance(login, bytes) else login,
            # STARTTLS sets `session.ssl`; SMTPS encrypts below aiosmtpd.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "peer_port": session.peer[1] if session.peer else None,
            "headers": [[k, str(v)] for k, v in message.items()],
            "date_epoch": email.utils.parsedate_to_datetime(date).timestamp()
            if date
            else None,
            "content_type": message.get_content_type(),
            "parts": parts,
        }
        self.count += 1
        path = os.path.join(self.args.dir, f"{self.count:04}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK: queued"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True, help="where received messages go")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"),
                   help="offer and require STARTTLS with this certificate")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                   help="TLS from the first byte (SMTPS)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require AUTH PLAIN or LOGIN with these credentials")
    p.add_argument("--rcpt-reply", help="answer every RCPT with this reply")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-at", choices=["mail", "rcpt", "data"], default="data")
    p.add_argument("--fail-reply", default="451 4.3.0 Try again later")
    args = p.parse_args()

    handler = Recorder(args)
    cert = args.starttls or args.tls
    context = None
    if cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert)
    options = {"hostname": "vigil-test-smtp", "ident": "vigil-test-smtp"}
    if args.starttls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=bool(cert),
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, **options),
            host="127.0.0.1",
            port=0,
            ssl=context if args.tls else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

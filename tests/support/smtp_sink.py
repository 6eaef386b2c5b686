#!/usr/bin/python3
"""A real SMTP server for tests (aiosmtpd): accepts every message and stores each as one file.

Usage: /usr/bin/python3 smtp_sink.py --port PORT --dir DIR
Each message becomes DIR/<time>-<n>.eml (written under a hidden name, then renamed, so a
reader never sees half a file), prefixed with X-Envelope-From and X-Envelope-To headers.
Runs until SIGTERM or SIGINT.
"""
import argparse
import itertools
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{next(self.counter)}.eml"
        hidden = os.path.join(self.directory, "." + name)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        with open(hidden, "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(content)
        os.rename(hidden, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Store(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink listening on {args.host}:{args.port}, storing into {args.dir}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

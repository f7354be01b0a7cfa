#!/usr/bin/env python3
"""The scale-up demo app: a counter kept in MariaDB.

GET /health          -> 200 "ok" when the app can reach its database
GET /api/...         -> {"host": <app host>, "counter": <visits so far>}

Settings come from the environment that `infra` writes: DB_HOST, DB_PORT, DB_NAME, DB_USER,
DB_PASSWORD and DB_REPLICAS (comma-separated addresses of read-only replicas).
"""
import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymysql


def connect(host):
    return pymysql.connect(
        host=host,
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
        database=os.environ["DB_NAME"],
        connect_timeout=3,
        autocommit=True,
    )


def bump():
    # The table is the migration's (migrate.py, run by `infra apply` before a release starts).
    with connect(os.environ["DB_HOST"]) as db, db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO visits (id, total, last_host) VALUES (1, 1, %s) "
            "ON DUPLICATE KEY UPDATE total = total + 1, last_host = VALUES(last_host)",
            (socket.gethostname(),),
        )
        cursor.execute("SELECT total FROM visits WHERE id = 1")
        return cursor.fetchone()[0]


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            try:
                with connect(os.environ["DB_HOST"]):
                    pass
                self.reply(200, "ok\n", "text/plain")
            except Exception as error:  # report, never crash the server
                self.reply(503, f"database unreachable: {type(error).__name__}\n", "text/plain")
        elif self.path.startswith("/api/"):
            try:
                counter = bump()
                body = {"host": socket.gethostname(), "counter": counter}
                self.reply(200, json.dumps(body) + "\n")
            except Exception as error:
                self.reply(503, json.dumps({"error": type(error).__name__}) + "\n")
        else:
            self.reply(404, json.dumps({"error": "not found"}) + "\n")

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()

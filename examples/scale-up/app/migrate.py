#!/usr/bin/env python3
"""The scale-up demo app's migration, run by `infra apply` (`app.migrate`) once per release,
on one app host, with the new release's files and environment, before any app host restarts
onto it. It owns the schema: the app itself creates no table.

Rules a migration keeps: the data it leaves must still suit the release that is running (add a
column, never drop or rename one in the same release), and running it again changes nothing.
"""
import os

import pymysql

STEPS = [
    # The counter.
    "CREATE TABLE IF NOT EXISTS visits (id INT PRIMARY KEY, total BIGINT NOT NULL)",
    # Which app host counted last.
    "ALTER TABLE visits ADD COLUMN IF NOT EXISTS last_host VARCHAR(64) NULL",
]


def main():
    db = pymysql.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
        database=os.environ["DB_NAME"],
        connect_timeout=5,
        autocommit=True,
    )
    with db, db.cursor() as cursor:
        for step in STEPS:
            cursor.execute(step)
            print(step)


if __name__ == "__main__":
    main()

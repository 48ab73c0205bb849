#!/usr/bin/env python3
"""Memory and disk of a running `tyboo up` under large webhook bodies.

Usage: memory.py TYBOO_BINARY [--rounds N] [--per-round N] [--body-bytes N]
                 [--concurrency N] [--database-url URL]

Starts `tyboo up` on free loopback ports with a fresh data folder, creates
a workflow with an async webhook trigger and one `set` node, and sends
rounds of webhooks whose JSON bodies are `--body-bytes` long. After each
round (every execution finished) and a short rest it reads the process's
resident memory (VmRSS) and the data folder's size, and prints them with
ratios against the figures measured in the same run: memory against the
first round's, disk against the bytes of bodies sent.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def folder_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


class Api:
    def __init__(self, base, key):
        self.base = base
        self.key = key

    def call(self, method, path, body=None, key=True, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if key:
            request.add_header("authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def mib(value):
    return f"{value / (1 << 20):8.1f} MiB"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tyboo")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--body-bytes", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rest-seconds", type=float, default=3.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="tyboo-memory-")
    data = os.path.join(work, "data")
    edge, tenancy, vault, executor, template, metering, admin = free_ports(7)
    env = dict(os.environ)
    env.update({
        "TYBOO_LISTEN__EDGE": f"127.0.0.1:{edge}",
        "TYBOO_LISTEN__TENANCY": f"127.0.0.1:{tenancy}",
        "TYBOO_LISTEN__VAULT": f"127.0.0.1:{vault}",
        "TYBOO_LISTEN__EXECUTOR": f"127.0.0.1:{executor}",
        "TYBOO_LISTEN__TEMPLATE": f"127.0.0.1:{template}",
        "TYBOO_LISTEN__METERING": f"127.0.0.1:{metering}",
        "TYBOO_LISTEN__ADMIN": f"127.0.0.1:{admin}",
        "TYBOO_LOG__FILTER": "warn",
    })
    command = [args.tyboo, "up", "--data-dir", data]
    if args.database_url:
        command += ["--database-url", args.database_url]
    stdout = open(os.path.join(work, "stdout"), "w+")
    process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    try:
        key = None
        for _ in range(600):
            stdout.seek(0)
            found = re.search(r"tyb_[A-Za-z0-9_-]+", stdout.read())
            if found:
                key = found.group(0)
                break
            if process.poll() is not None:
                sys.exit("tyboo up exited before printing its API key")
            time.sleep(0.1)
        if key is None:
            sys.exit("no API key within 60 s")
        api = Api(f"http://127.0.0.1:{edge}", key)
        status, created = api.call("POST", "/v1/workflows", {
            "name": "memory",
            "graph": {
                "nodes": [
                    {"id": "hook", "type": "trigger.webhook",
                     "parameters": {"path": "memory", "mode": "async"}},
                    {"id": "done", "type": "set", "parameters": {"values": {"ok": True}}},
                ],
                "edges": [{"from": "hook", "to": "done"}],
            },
        })
        if status != 200:
            sys.exit(f"creating the workflow answered {status}: {created}")
        workflow_id = created["workflow"]["id"]
        _, hooks = api.call("GET", f"/v1/workflows/{workflow_id}/webhooks")
        hook = hooks["webhooks"][0]["urlPath"]
        filler = "x" * max(0, args.body_bytes - len('{"blob":""}'))
        body = json.dumps({"blob": filler}).encode()

        def deliver(_):
            status, answer = api.call("POST", hook, key=False, raw=body)
            if status != 202:
                raise RuntimeError(f"webhook answered {status}: {answer}")
            return answer["executionId"]

        def wait_finished(ids):
            pending = set(ids)
            deadline = time.monotonic() + 300
            while pending:
                if time.monotonic() > deadline:
                    sys.exit(f"{len(pending)} executions did not finish within 300 s")
                _, page = api.call(
                    "GET",
                    f"/v1/executions?workflowId={workflow_id}&pageSize=500",
                )
                done = {
                    execution["id"]
                    for execution in page.get("executions", [])
                    if execution["status"] not in
                    ("EXECUTION_STATUS_QUEUED", "EXECUTION_STATUS_RUNNING")
                }
                pending -= done
                if pending:
                    time.sleep(0.2)

        time.sleep(args.rest_seconds)
        start_rss = rss_bytes(process.pid)
        start_disk = folder_bytes(data)
        print(f"tyboo up, started      rss {mib(start_rss)}   data {mib(start_disk)}")
        first = None
        sent = 0
        for round_number in range(1, args.rounds + 1):
            with ThreadPoolExecutor(args.concurrency) as pool:
                ids = list(pool.map(deliver, range(args.per_round)))
            wait_finished(ids)
            sent += len(body) * args.per_round
            time.sleep(args.rest_seconds)
            rss = rss_bytes(process.pid)
            disk = folder_bytes(data) - start_disk
            first = first or rss
            print(
                f"round {round_number:2}: {args.per_round} x {len(body)} B   "
                f"rss {mib(rss)} ({rss / first:5.2f}x round 1)   "
                f"data +{mib(disk)} ({disk / sent:5.2f}x bodies sent)"
            )
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()

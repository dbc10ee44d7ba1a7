#!/usr/bin/env python3
"""CV Manager benchmark suite (run it through bench/run.sh, which builds the release binary).

Seeds two databases with `cvm seed` (a large one, 100,000 users by default, and a small one,
1,000 users, so that the cost of the admin pages can be compared across sizes), times
`rebuild-projections` and startup, starts the real server, logs in with the seed's documented
passwords, drives the server with wrk (bench/scenario.lua) and prints one markdown table:
scenario, requests/s, p50, p99, errors — the medians of several runs.

Seeded databases are kept under target/bench/ and reused while the binary's seed options stay
the same; delete the folder (or pass --fresh) to seed again.

Environment (or the matching options): BENCH_USERS, BENCH_SMALL_USERS, BENCH_RUNS,
BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ONLY (comma-separated scenario names).
"""

import argparse
import html.parser
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "cvm"
SCRIPT = ROOT / "bench" / "scenario.lua"
ADMIN = ("admin@example.com", "seeded chief passphrase")
USER_PASSWORD = "seeded member passphrase"


def user_email(n):
    return f"user{n:06}@example.com"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- seeding and CLI timings


def seed(directory, users, fresh):
    """Seeds `directory` once (kept while its marker says the same plan); returns its record."""
    marker = directory / "bench-seed.json"
    # One CV per user: 100,000 users make about 1.35 million events, the shape issue 8 sets
    # its targets on ("100,000 users and 1,000,000 events").
    plan = {"users": users, "cvs_per_user": 1, "days": 90, "logins_per_user": 3, "seed": 1}
    if marker.exists() and not fresh:
        record = json.loads(marker.read_text())
        if record.get("plan") == plan:
            return record
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log(f"seeding {users} users into {directory} ...")
    started = time.monotonic()
    run_cli(
        "seed",
        "--data-dir", str(directory),
        "--users", str(plan["users"]),
        "--cvs-per-user", str(plan["cvs_per_user"]),
        "--days", str(plan["days"]),
        "--logins-per-user", str(plan["logins_per_user"]),
        "--seed", str(plan["seed"]),
    )
    seconds = time.monotonic() - started
    record = {"plan": plan, "seconds": seconds, "events": count_events(directory)}
    marker.write_text(json.dumps(record))
    return record


def database_file(directory):
    return directory / "cvm.db"


def count_events(directory):
    with sqlite3.connect(f"file:{database_file(directory)}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def run_cli(*args):
    environment = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    subprocess.run([str(BINARY), *args], check=True, env=environment,
                   stdout=subprocess.DEVNULL)


def time_rebuild(directory, runs):
    """Median of `runs` rebuilds of the whole log as it is now (earlier benchmark runs' edits
    included: the seed's count would understate an aged database). Single rebuilds of the
    large database took from 32 to 40 s from one suite run to the next."""
    events = count_events(directory)
    times = []
    for run in range(runs):
        log(f"rebuild-projections ({run + 1}/{runs}) ...")
        started = time.monotonic()
        run_cli("rebuild-projections", "--data-dir", str(directory))
        times.append(time.monotonic() - started)
    seconds = statistics.median(times)
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds,
            "runs_seconds": times}


# ---------------------------------------------------------------- the server


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """The real `cvm` binary serving one data directory on a free port."""

    def __init__(self, directory, logfile):
        self.port = free_port()
        self.directory = directory
        environment = dict(
            os.environ,
            CVM_DATA_DIR=str(directory),
            CVM_LISTEN=f"127.0.0.1:{self.port}",
            CVM_PUBLIC_URL=f"http://127.0.0.1:{self.port}",
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
        )
        self.started = time.monotonic()
        self.process = subprocess.Popen([str(BINARY)], env=environment,
                                        stdout=logfile, stderr=logfile)
        self.ready_after = self.wait_ready()

    def wait_ready(self):
        deadline = self.started + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"cvm exited with {self.process.returncode} (see its log)")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.002)
        raise SystemExit("cvm did not become ready within 120 s")

    def peak_memory_mb(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kilobytes = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        return kilobytes / 1024

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- logging in over HTTP


class Forms(html.parser.HTMLParser):
    """The forms of a page: action -> list of (name, value) of its fields."""

    def __init__(self):
        super().__init__()
        self.forms = {}
        self.current = None
        self.textarea = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.current = self.forms.setdefault(attributes.get("action", ""), [])
        elif self.current is not None and tag in ("input", "select") and "name" in attributes:
            if attributes.get("type") not in ("submit", "button", "file"):
                self.current.append([attributes["name"], attributes.get("value", "")])
        elif self.current is not None and tag == "textarea":
            self.textarea = [attributes.get("name", ""), ""]
            self.current.append(self.textarea)

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "textarea":
            self.textarea = None


class Browser:
    """A cookie-keeping HTTP client for one person."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, form=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.getheader("location"), text

    def forms(self, path):
        status, _, text = self.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")
        parser = Forms()
        parser.feed(text)
        return parser.forms, text

    def log_in(self, email, password):
        forms, _ = self.forms("/login")
        token = dict(forms["/login"])["csrf_token"]
        status, _, _ = self.request("POST", "/login", {
            "email": email, "password": password, "next": "", "csrf_token": token})
        if status != 303:
            raise SystemExit(f"login as {email} answered {status}")

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def user_session(port, n):
    """A logged-in member with the first CV of their list and its basics form."""
    browser = Browser(port)
    browser.log_in(user_email(n), USER_PASSWORD)
    _, _, listing = browser.request("GET", "/cvs")
    cv = re.search(r'href="/cvs/([0-9a-f-]{36})"', listing).group(1)
    forms, _ = browser.forms(f"/cvs/{cv}/edit")
    fields = forms[f"/cvs/{cv}/basics"]
    values = dict(fields)
    version = int(values["expected_version"])
    csrf = values["csrf_token"]
    kept = []
    for name, value in fields:
        if name in ("expected_version", "csrf_token"):
            continue
        if name.endswith("label"):
            value = "Engineer, edit BENCHN"
        kept.append((name, value))
    body = urllib.parse.urlencode(kept).replace("BENCHN", "{n}")
    return {"cookie": browser.cookie_header(), "csrf": csrf, "cv": cv,
            "version": version, "body": body}


def admin_session(port):
    browser = Browser(port)
    browser.log_in(*ADMIN)
    _, _, page = browser.request("GET", "/admin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return {"cookie": browser.cookie_header(), "csrf": csrf.group(1) if csrf else "",
            "cv": "", "version": 0, "body": ""}


def login_sessions(count):
    sessions = []
    for n in range(1, count + 1):
        body = urllib.parse.urlencode({"email": user_email(n), "password": USER_PASSWORD})
        sessions.append({"cookie": "", "csrf": "", "cv": "", "version": 0, "body": body})
    return sessions


def lua_table(sessions):
    rows = []
    for session in sessions:
        fields = ", ".join(f"{key} = {json.dumps(value)}" for key, value in session.items())
        rows.append("  { " + fields + " },")
    return "return {\n" + "\n".join(rows) + "\n}\n"


def lua_sessions(sessions, folder, name):
    path = Path(folder) / f"{name}.lua"
    path.write_text(lua_table(sessions))
    return path


# ---------------------------------------------------------------- wrk


def wrk(port, sessions_file, mode, path, connections, seconds):
    environment = dict(os.environ, BENCH_MODE=mode, BENCH_PATH=path,
                       BENCH_SESSIONS=str(sessions_file))
    command = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(SCRIPT), f"http://127.0.0.1:{port}"]
    output = subprocess.run(command, env=environment, check=True, capture_output=True,
                            text=True).stdout
    line = next(l for l in output.splitlines() if l.startswith("BENCH_RESULT "))
    result = json.loads(line[len("BENCH_RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    result["actions_per_second"] = result["actions"] / result["seconds"]
    return result


def errors(result, mode):
    """Answers the scenario did not expect, plus socket errors."""
    if mode == "get":
        unexpected = result["s3"] + result["s4"] + result["s5"] + result["other"]
    elif mode == "edit":
        unexpected = result["refused"]
    else:  # login: a 200 page, then a 303 after the POST
        unexpected = result["refused"] + result["s4"] + result["s5"] + result["other"]
    return unexpected + result["socket_errors"]


def median_of(results, mode):
    return {
        "rps": statistics.median(r["rps"] for r in results),
        "actions_per_second": statistics.median(r["actions_per_second"] for r in results),
        "p50_ms": statistics.median(r["p50_ms"] for r in results),
        "p99_ms": statistics.median(r["p99_ms"] for r in results),
        "errors": sum(errors(r, mode) for r in results),
        "requests": sum(r["requests"] for r in results),
        "runs": len(results),
    }


# ---------------------------------------------------------------- the scenarios

# name, label, mode, path, sessions ("users", "admin" or "logins")
SCENARIOS = [
    ("cv_page", "CV page (logged in)", "get", "/cvs/{cv}", "users"),
    ("cv_list", "CV list", "get", "/cvs", "users"),
    ("profile", "Profile page", "get", "/profile", "users"),
    ("dashboard", "Admin dashboard", "get", "/admin", "admin"),
    ("audit_first", "Audit trail, first page", "get", "/admin/audit", "admin"),
    ("audit_filtered", "Audit trail, filtered (CvBasicsUpdated)", "get",
     "/admin/audit?event_type=CvBasicsUpdated", "admin"),
    ("cv_edit", "CV edit (POST, durable)", "edit", "", "users"),
    ("login", "Login (GET form + POST)", "login", "", "logins"),
]
SMALL_SCENARIOS = {"cv_page", "dashboard", "audit_first", "audit_filtered"}


def refresh_versions(port, sessions, path):
    """Reads each session's CV version again (the previous run moved them on), after the
    edits that wrk cut off at the end of its run have finished (an edit's p99 is some
    hundreds of milliseconds, and its slowest take longer: 0.5 s left one refusal per run)."""
    time.sleep(3)
    for session in sessions:
        browser = Browser(port)
        name, _, value = session["cookie"].partition("=")
        browser.cookies[name] = value
        forms, _ = browser.forms(f"/cvs/{session['cv']}/edit")
        session["version"] = int(dict(forms[f"/cvs/{session['cv']}/basics"])["expected_version"])
    path.write_text(lua_table(sessions))


def run_scenarios(port, files, names, options, warm_up=2):
    results = {}
    for name, label, mode, path, who in SCENARIOS:
        if name not in names:
            continue
        log(f"  {name}: warm-up, then {options.runs} × {options.seconds} s")

        def once(seconds):
            if mode == "edit":
                refresh_versions(port, files["member_sessions"], files["users"])
            return wrk(port, files[who], mode, path, options.connections, seconds)

        once(warm_up)
        runs = [once(options.seconds) for _ in range(options.runs)]
        results[name] = {"label": label, "mode": mode, **median_of(runs, mode)}
    return results


def login_flood(port, files, options):
    """CV page with `connections` connections while 16 connections log in."""
    log(f"  login flood: {options.runs} × {options.seconds} s")
    runs, logins = [], []
    for _ in range(options.runs):
        environment = dict(os.environ, BENCH_MODE="login", BENCH_PATH="",
                           BENCH_SESSIONS=str(files["logins"]))
        flood = subprocess.Popen(
            ["wrk", "-t", "16", "-c", "16", "-d", f"{options.seconds + 2}s", "--timeout", "10s",
             "-s", str(SCRIPT), f"http://127.0.0.1:{port}"],
            env=environment, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        runs.append(wrk(port, files["users"], "get", "/cvs/{cv}", options.connections,
                        options.seconds))
        output = flood.communicate()[0]
        line = next(l for l in output.splitlines() if l.startswith("BENCH_RESULT "))
        flood_result = json.loads(line[len("BENCH_RESULT "):])
        logins.append(flood_result["actions"] / flood_result["seconds"])
    result = {"label": "CV page during a login flood (16 connections on /login)",
              "mode": "get", **median_of(runs, "get")}
    result["flood_logins_per_second"] = statistics.median(logins)
    return result


def bench_database(directory, users, options, names, with_flood, logfile):
    record = seed(directory, users, options.fresh)
    out = {"users": users, "events": record["events"], "seed_seconds": record["seconds"]}
    names = set(names)
    if options.rebuild and "rebuild" in names:
        out["rebuild"] = time_rebuild(directory, options.runs)
    startups = []
    for _ in range(3):
        server = Server(directory, logfile)
        startups.append(server.ready_after)
        server.stop()
    out["startup_seconds"] = statistics.median(startups)
    server = Server(directory, logfile)
    try:
        with tempfile.TemporaryDirectory() as folder:
            count = options.connections
            log(f"  logging in {count} members and the superuser ...")
            members = [user_session(server.port, n) for n in range(1, count + 1)]
            files = {
                "member_sessions": members,
                "users": lua_sessions(members, folder, "users"),
                "admin": lua_sessions([admin_session(server.port)], folder, "admin"),
                "logins": lua_sessions(login_sessions(count), folder, "logins"),
            }
            out["results"] = run_scenarios(server.port, files, names, options)
            if with_flood and "login_flood" in names:
                out["results"]["login_flood"] = login_flood(server.port, files, options)
        out["peak_memory_mb"] = server.peak_memory_mb()
    finally:
        server.stop()
    return out


# ---------------------------------------------------------------- the report


def table(large, small, options):
    sizes = f"Large database: {large['users']:,} users, {large['events']:,} events"
    if small:
        sizes += (f"; small database (rows marked so): {small['users']:,} users, "
                  f"{small['events']:,} events")
    lines = [
        f"{sizes}. {options.connections} connections, median of {options.runs} runs × "
        f"{options.seconds} s.",
        "",
        "| Scenario | Requests/s | p50 | p99 | Errors |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(label, result):
        rate = f"{result['rps']:,.0f}"
        if result["mode"] in ("edit", "login"):
            rate = f"{result['actions_per_second']:,.0f} {'edits' if result['mode'] == 'edit' else 'logins'}/s"
            if result["mode"] == "login":
                rate += f" ({result['rps']:,.0f} requests/s)"
        lines.append(f"| {label} | {rate} | {result['p50_ms']:.2f} ms | "
                     f"{result['p99_ms']:.2f} ms | {result['errors']} |")

    for result in large["results"].values():
        row(result["label"], result)
    for result in (small or {}).get("results", {}).values():
        row(f"{result['label']} — {small['users']:,} users", result)
    lines.append("")
    if "login_flood" in large["results"]:
        lines.append(f"- Logins completed during the flood: "
                     f"{large['results']['login_flood']['flood_logins_per_second']:,.0f}/s")
    if "rebuild" in large:
        rebuild = large["rebuild"]
        runs = ", ".join(f"{seconds:.1f}" for seconds in rebuild["runs_seconds"])
        lines.append(f"- rebuild-projections: {rebuild['events']:,} events in "
                     f"{rebuild['seconds']:.1f} s = {rebuild['events_per_second']:,.0f} events/s "
                     f"(median of {len(rebuild['runs_seconds'])} runs: {runs} s)")
    lines.append(f"- cvm seed: {large['events']:,} events in {large['seed_seconds']:.1f} s "
                 f"({large['events'] / large['seed_seconds']:,.0f} events/s; seeded now or "
                 f"earlier, see target/bench)")
    lines.append(f"- Startup to ready (/healthz 200), median of 3: "
                 f"{large['startup_seconds'] * 1000:.0f} ms on the large database"
                 + (f", {small['startup_seconds'] * 1000:.0f} ms on the small one" if small else ""))
    lines.append(f"- Server peak memory (VmHWM) after the large run: "
                 f"{large['peak_memory_mb']:.0f} MB")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get
    parser.add_argument("--users", type=int, default=int(env("BENCH_USERS", 100_000)))
    parser.add_argument("--small-users", type=int, default=int(env("BENCH_SMALL_USERS", 1_000)),
                        help="0 skips the small database")
    parser.add_argument("--runs", type=int, default=int(env("BENCH_RUNS", 3)))
    parser.add_argument("--seconds", type=int, default=int(env("BENCH_SECONDS", 10)))
    parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", 32)))
    parser.add_argument("--only", default=env("BENCH_ONLY", ""),
                        help="comma-separated scenarios (" + ", ".join(
                            [s[0] for s in SCENARIOS] + ["login_flood", "rebuild"]) + ")")
    parser.add_argument("--no-rebuild", dest="rebuild", action="store_false")
    parser.add_argument("--fresh", action="store_true", help="seed again")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    names = [s[0] for s in SCENARIOS] + ["login_flood", "rebuild"]
    if options.only:
        names = [n.strip() for n in options.only.split(",")]
    bench_dir = ROOT / "target" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    with open(bench_dir / "server.log", "w") as logfile:
        log(f"large database: {options.users} users")
        large = bench_database(bench_dir / f"large-{options.users}", options.users, options,
                               names, True, logfile)
        small = None
        small_names = [n for n in names if n in SMALL_SCENARIOS]
        if options.small_users and small_names:
            log(f"small database: {options.small_users} users")
            small = bench_database(bench_dir / f"small-{options.small_users}",
                                   options.small_users, options, small_names, False, logfile)
    if options.json:
        Path(options.json).write_text(json.dumps({"large": large, "small": small}, indent=2))
    print(table(large, small, options))


if __name__ == "__main__":
    main()

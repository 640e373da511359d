#!/usr/bin/env python3
"""Checks the observability assets under dashboards/ without starting servers.

    python3 tests/dashboards/check_assets.py [-v]

(a) Grafana dashboards (dashboards/grafana/*.json): valid JSON, schema
    version, datasource uid = the provisioned one, every panel has targets with
    a non-empty expr, every tokenwatch metric and label the queries use is one
    the binaries export, template variables are declared, used and queried
    from real labels, every expression parses as PromQL (promtool), the JSON
    is what dashboards/generate_dashboards.py produces.
(b) Provisioning files, dashboards/prometheus/prometheus.yml (promtool check
    config), dashboards/prometheus/tokenwatch.rules.yml (promtool check rules,
    promtool test rules with tests/dashboards/rules_test.yml, every alert
    covered firing and not firing), dashboards/alertmanager/alertmanager.yml
    (amtool check-config, routing).

Needs the Debian packages prometheus (promtool), prometheus-alertmanager
(amtool) and python3-yaml. Prints "N passed, M failed"; exit status 1 when
anything failed.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASH_DIR = os.path.join(ROOT, "dashboards")
GRAFANA_DIR = os.path.join(DASH_DIR, "grafana")
DS_FILE = os.path.join(DASH_DIR, "provisioning", "datasources", "prometheus.yaml")
PROVIDER_FILE = os.path.join(DASH_DIR, "provisioning", "dashboards", "tokenwatch.yaml")
RULES_FILE = os.path.join(DASH_DIR, "prometheus", "tokenwatch.rules.yml")
PROM_FILE = os.path.join(DASH_DIR, "prometheus", "prometheus.yml")
AM_FILE = os.path.join(DASH_DIR, "alertmanager", "alertmanager.yml")
RULES_TEST = os.path.join(ROOT, "tests", "dashboards", "rules_test.yml")
GENERATOR = os.path.join(DASH_DIR, "generate_dashboards.py")

DS_UID = "tokenwatch-prometheus"
COLLECTOR_TARGET, AGENT_TARGET = "127.0.0.1:9471", "127.0.0.1:9472"
WEBHOOK_URL_PREFIX = "http://127.0.0.1:5001"

# ---------------------------------------------------------------------------
# The metrics the binaries export (issue 5), with their labels. A set lists
# the bounded values of a label; None means values are open (names, reasons).

ALERT_TYPES = {"cross_service", "audience_mismatch", "expired_use", "not_yet_valid",
               "sensitive_endpoint", "multi_source", "alg_none", "alg_not_allowed",
               "invalid_signature", "weak_secret", "header_injection", "no_expiry",
               "long_lived", "revoked_use", "token_in_url"}
SEVERITIES = {"low", "medium", "high", "critical"}   # SPEC: sensitive_endpoints[].severity
DROP_REASONS = {"flow_table_full", "reassembly_flow_cap", "reassembly_global_cap",
                "pending_requests", "header_bytes", "token_too_long", "tokens_per_request",
                "ip_fragment_timeout", "ip_fragment_limit", "http2_streams", "http2_header_list",
                "tls_probe_ring", "tls_probe_truncated", "tls_probe_unbound", "tls_probe_connections"}

AGENT_METRICS = {
    "tokenwatch_agent_packets_total": {},
    "tokenwatch_agent_bytes_total": {},
    "tokenwatch_agent_capture_drops_total": {"reason": {"kernel", "interface"}},
    "tokenwatch_agent_flows_active": {},
    "tokenwatch_agent_flows_total": {},
    "tokenwatch_agent_reassembly_buffered_bytes": {},
    "tokenwatch_agent_drops_total": {"reason": DROP_REASONS},
    "tokenwatch_agent_http_messages_total": {"direction": {"request", "response"}},
    "tokenwatch_agent_anomalies_total": {"name": None},
    "tokenwatch_agent_tokens_total": {"kind": {"jwt", "opaque", "jwe"}},
    "tokenwatch_agent_malformed_tokens_total": {"reason": None},
    "tokenwatch_agent_token_cache_lookups_total": {"result": {"hit", "miss"}},
    "tokenwatch_agent_events_total": {"state": {"queued", "sent", "acked", "dropped"}},
    "tokenwatch_agent_collector_reconnects_total": {},
    "tokenwatch_agent_queue_events": {},
    "tokenwatch_agent_delivery_lag_seconds": {},
    "tokenwatch_agent_stage_seconds_total": {"stage": {"capture", "decode", "tcp_http", "output"}},
}
for _labels in AGENT_METRICS.values():
    _labels["agent"] = None          # constant label on every agent metric

COLLECTOR_METRICS = {
    "tokenwatch_collector_events_received_total": {"agent": None},
    "tokenwatch_collector_batches_total": {"agent": None},
    "tokenwatch_collector_duplicate_batches_total": {},
    "tokenwatch_collector_tokens_tracked": {},
    "tokenwatch_collector_token_bytes_per_token": {},
    "tokenwatch_collector_token_uses_total": {
        "service": None, "status_class": {"none", "1xx", "2xx", "3xx", "4xx", "5xx"}},
    "tokenwatch_collector_alerts_total": {"type": ALERT_TYPES, "severity": SEVERITIES, "service": None},
    "tokenwatch_collector_expired_uses_total": {"service": None, "accepted": {"true", "false", "unknown"}},
    "tokenwatch_collector_detector_seconds_total": {"detector": None},
    "tokenwatch_collector_store_commit_seconds": {"le": None},      # histogram
    "tokenwatch_collector_store_commit_failures_total": {},
    "tokenwatch_collector_open_streams": {},
    "tokenwatch_collector_alert_deliveries_total": {
        "sink": {"alertmanager", "webhook"}, "result": {"ok", "retry", "dropped"}},
}
METRICS = {**AGENT_METRICS, **COLLECTOR_METRICS}
TARGET_LABELS = {"job", "instance"}          # added by Prometheus on scrape
HISTOGRAMS = {"tokenwatch_collector_store_commit_seconds"}

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                    "__range_ms", "__from", "__to", "__dashboard", "__org", "__user"}

# What the brief asks each dashboard to show (substrings of panel titles).
REQUIRED_PANELS = {
    "fleet-overview.json": ["Token uses by service", "Alerts over time by type",
                            "Expired-token use: accepted vs rejected", "Cross-service tokens",
                            "Sensitive-endpoint touches", "Critical alerts"],
    "token-behaviour.json": ["Uses by status class", "Alert types by service", "Tokens tracked",
                             "Bytes per tracked token", "Detector time"],
    "agent-health.json": ["Capture drops", "Parse anomalies", "Drops by reason", "Queue depth",
                          "Delivery lag", "Collector reconnects", "Packets / s", "Stage time"],
}
REQUIRED_ALERTS = {"TokenwatchCriticalAlert", "TokenwatchCollectorDown", "TokenwatchAgentDown",
                   "TokenwatchCaptureDrops", "TokenwatchEventsDropped", "TokenwatchDeliveryLagHigh",
                   "TokenwatchStoreCommitFailures"}

VERBOSE = "-v" in sys.argv


# ---------------------------------------------------------------------------
# Result bookkeeping

class Results:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, name, problems):
        """problems: list of strings (empty = pass)."""
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems[:40]:
                print(f"     - {p}")
            if len(problems) > 40:
                print(f"     ... and {len(problems) - 40} more")
        else:
            self.passed += 1
            print(f"ok   {name}")


R = Results()


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def tool(name, package):
    path = shutil.which(name)
    return path, ([] if path else [f"{name} not found: apt-get install -y {package}"])


# ---------------------------------------------------------------------------
# PromQL helpers (enough to lint selectors; promtool does the real parse)

METRIC_RE = re.compile(r"tokenwatch_[a-z_]+")
SELECTOR_RE = re.compile(r"\b(tokenwatch_[a-z_]+)\s*(\{([^}]*)\})?")
MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
BY_RE = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
LEGEND_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
VAR_RE = re.compile(r"\$(?:\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|([a-zA-Z_][a-zA-Z0-9_]*))")
SIMPLE_ALTERNATION = re.compile(r"^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$")


def base_metric(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return name


def metrics_in(expr):
    return {base_metric(m) for m in METRIC_RE.findall(expr)}


def lint_expr(expr, where):
    """Metric names, label names and bounded label values of one expression."""
    problems = []
    used = metrics_in(expr)
    for m in sorted(used - METRICS.keys()):
        problems.append(f"{where}: unknown metric {m}")
    for sel in SELECTOR_RE.finditer(expr):
        metric = base_metric(sel.group(1))
        if metric not in METRICS or not sel.group(3):
            continue
        allowed = METRICS[metric]
        for label, op, value in MATCHER_RE.findall(sel.group(3)):
            if label in TARGET_LABELS:
                continue
            if label not in allowed:
                problems.append(f"{where}: {metric} has no label '{label}'")
                continue
            bounded = allowed[label]
            if bounded is None or "$" in value:
                continue
            if op in ("=", "!="):
                values = [value]
            elif SIMPLE_ALTERNATION.match(value):
                values = value.split("|")
            else:
                continue
            for v in values:
                if v not in bounded:
                    problems.append(f"{where}: {metric}{{{label}}} has no value '{v}' "
                                    f"(known: {', '.join(sorted(bounded))})")
    known_labels = set(TARGET_LABELS) | {"le"}
    for m in used & METRICS.keys():
        known_labels |= METRICS[m].keys()
    if "ALERTS" not in expr and "up{" not in expr and not re.search(r"\bup\b", expr):
        for group in BY_RE.findall(expr):
            for label in [x.strip() for x in group.split(",") if x.strip()]:
                if label not in known_labels:
                    problems.append(f"{where}: grouping by '{label}', which none of "
                                    f"{', '.join(sorted(used)) or 'its metrics'} has")
    return problems


def grafana_to_promql(expr):
    """Replace Grafana variables with values Prometheus accepts."""
    out = expr.replace("$__rate_interval", "5m").replace("$__interval_ms", "60000")
    out = out.replace("$__interval", "1m").replace("$__range_s", "3600")
    out = out.replace("$__range_ms", "3600000").replace("$__range", "1h")
    return VAR_RE.sub(".*", out)


def promql_parses(exprs, promtool):
    """exprs: list of (where, promql). Returns problems; uses promtool check rules."""
    if not exprs:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        def check(batch):
            path = os.path.join(tmp, "exprs.yml")
            rules = [{"record": f"dashboard_check:expr_{i}", "expr": e} for i, (_, e) in enumerate(batch)]
            with open(path, "w") as f:
                yaml.safe_dump({"groups": [{"name": "dashboard-exprs", "rules": rules}]}, f)
            return run([promtool, "check", "rules", path])
        res = check(exprs)
        if res.returncode == 0:
            return []
        problems = []
        for where, e in exprs:                       # find the culprits one by one
            one = check([(where, e)])
            if one.returncode != 0:
                msg = " ".join(line.strip() for line in one.stdout.splitlines() if line.strip())
                problems.append(f"{where}: does not parse: {e!r}: {msg[-300:]}")
        return problems or [res.stdout[-800:]]


# ---------------------------------------------------------------------------
# Dashboards

def walk(obj, path="$"):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def variable_query(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or var.get("definition", "")


def check_dashboards(promtool):
    files = sorted(glob.glob(os.path.join(GRAFANA_DIR, "*.json")))
    R.check("dashboards: the three dashboards exist",
            [f"missing dashboards/grafana/{n}" for n in REQUIRED_PANELS
             if not os.path.exists(os.path.join(GRAFANA_DIR, n))])
    all_metrics, all_vars, uids, parse_list = set(), set(), {}, []
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            d = json.loads(text)
        except (OSError, ValueError) as e:
            R.check(f"{name}: valid JSON", [str(e)])
            continue
        R.check(f"{name}: valid JSON", [])

        problems = []
        if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
            problems.append(f"schemaVersion {d.get('schemaVersion')!r} < 36")
        if not d.get("uid") or not d.get("title"):
            problems.append("uid and title are required")
        elif d["uid"] in uids:
            problems.append(f"uid {d['uid']} also used by {uids[d['uid']]}")
        else:
            uids[d["uid"]] = name
        if d.get("id") is not None:
            problems.append("dashboard id must be null for provisioning")
        if "__inputs" in d or "${DS_" in text:
            problems.append("uses an import-time ${DS_...} input instead of the provisioned uid")
        R.check(f"{name}: dashboard header (schemaVersion >= 36, uid, no __inputs)", problems)

        # Datasources: every reference is the provisioned Prometheus uid.
        problems = []
        for where, node in walk(d):
            if "datasource" not in node:
                continue
            ds = node["datasource"]
            if not isinstance(ds, dict):
                problems.append(f"{where}.datasource is {ds!r}, not {{type, uid}}")
            elif ds.get("uid") != DS_UID or ds.get("type") != "prometheus":
                problems.append(f"{where}.datasource = {ds} (want prometheus uid {DS_UID})")
        R.check(f"{name}: every datasource is uid {DS_UID}", problems)

        # Panels and their queries.
        panels = []
        for p in d.get("panels", []):
            panels.append(p)
            panels.extend(p.get("panels", []))        # collapsed rows
        problems, exprs, ids = [], [], set()
        for p in panels:
            title = p.get("title", "?")
            if p.get("id") in ids:
                problems.append(f"panel id {p.get('id')} repeated")
            ids.add(p.get("id"))
            if "gridPos" not in p:
                problems.append(f"panel '{title}' has no gridPos")
            if p.get("type") == "row":
                continue
            if not (p.get("description") or "").strip():
                problems.append(f"panel '{title}' has no description")
            targets = p.get("targets") or []
            if not targets:
                problems.append(f"panel '{title}' has no targets")
            refs = set()
            for t in targets:
                expr = (t.get("expr") or "").strip()
                if not expr:
                    problems.append(f"panel '{title}' target {t.get('refId')} has an empty expr")
                    continue
                if t.get("refId") in refs:
                    problems.append(f"panel '{title}' repeats refId {t.get('refId')}")
                refs.add(t.get("refId"))
                exprs.append((f"panel '{title}' {t.get('refId')}", expr, t.get("legendFormat") or ""))
        R.check(f"{name}: every panel has a description and targets with a non-empty expr", problems)

        # Grid: panels do not overlap and fit 24 columns.
        problems, cells = [], {}
        for p in panels:
            g = p.get("gridPos") or {}
            if g.get("x", 0) + g.get("w", 0) > 24:
                problems.append(f"panel '{p.get('title')}' is wider than the grid")
            for yy in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                for xx in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
                    if (xx, yy) in cells:
                        problems.append(f"panels '{cells[(xx, yy)]}' and '{p.get('title')}' overlap")
                        break
                    cells[(xx, yy)] = p.get("title")
                else:
                    continue
                break
        R.check(f"{name}: panel layout (no overlap, 24 columns)", problems)

        # Metric names, labels, legends.
        annotations = [(f"annotation '{a.get('name')}'", a.get("expr", ""))
                       for a in d.get("annotations", {}).get("list", []) if a.get("expr")]
        variables = d.get("templating", {}).get("list", [])
        problems = []
        for where, expr, legend in exprs:
            problems += lint_expr(expr, where)
            all_metrics |= metrics_in(expr)
            known = set(TARGET_LABELS) | {"le"}
            for m in metrics_in(expr) & METRICS.keys():
                known |= METRICS[m].keys()
            for label in LEGEND_RE.findall(legend):
                if label not in known:
                    problems.append(f"{where}: legend uses {{{{{label}}}}}, not a label of its metrics")
        for where, expr in annotations:
            problems += lint_expr(expr, where)
        R.check(f"{name}: every metric and label in the queries is one the binaries export", problems)

        # Template variables.
        problems = []
        declared = {v.get("name") for v in variables}
        if not declared:
            problems.append("no template variables")
        panel_text = "\n".join(e for _, e, _ in exprs)
        used_vars = {a or b for a, b in VAR_RE.findall(panel_text)}
        for v in variables:
            vname = v.get("name")
            all_vars.add(vname)
            q = variable_query(v)
            m = re.fullmatch(r"\s*label_values\(\s*([a-z_:]+)\s*,\s*([a-zA-Z_]+)\s*\)\s*", q or "")
            if v.get("type") != "query" or not m:
                problems.append(f"variable {vname}: want a label_values(metric, label) query, got {q!r}")
            else:
                metric, label = base_metric(m.group(1)), m.group(2)
                all_metrics.add(metric)
                if metric not in METRICS:
                    problems.append(f"variable {vname}: unknown metric {metric}")
                elif label not in METRICS[metric]:
                    problems.append(f"variable {vname}: {metric} has no label {label}")
            if vname not in used_vars:
                problems.append(f"variable {vname} is declared but no panel query uses it")
            if v.get("multi") or v.get("includeAll"):
                for where, expr, _ in exprs:
                    if re.search(r'[a-zA-Z_]\s*(=|!=)\s*"\$\{?' + re.escape(vname) + r'\b', expr):
                        problems.append(f"{where}: multi-value ${vname} needs =~, not =")
        for var in sorted(used_vars - declared - GRAFANA_BUILTINS):
            problems.append(f"queries use ${var}, which is not declared")
        for p in panels:
            if p.get("repeat") and p["repeat"] not in declared:
                problems.append(f"panel '{p.get('title')}' repeats over undeclared ${p['repeat']}")
        R.check(f"{name}: template variables ({', '.join(sorted(declared))}) are label_values queries used by the panels",
                problems)

        # What the brief asks this dashboard to show.
        titles = [p.get("title", "") for p in panels]
        R.check(f"{name}: has the panels the issue asks for",
                [f"no panel titled like '{want}'" for want in REQUIRED_PANELS.get(name, [])
                 if not any(want.lower() in t.lower() for t in titles)])

        parse_list += [(f"{name} {w}", grafana_to_promql(e)) for w, e, _ in exprs]
        parse_list += [(f"{name} {w}", grafana_to_promql(e)) for w, e in annotations]

    R.check("dashboards: variables service and agent exist",
            [f"no dashboard declares ${v}" for v in ("service", "agent") if v not in all_vars])
    return all_metrics, parse_list


# ---------------------------------------------------------------------------
# Rules

def check_rules(promtool, promtool_problems):
    try:
        with open(RULES_FILE) as f:
            rules_doc = yaml.safe_load(f)
        with open(RULES_TEST) as f:
            test_doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        R.check("rules: files load", [str(e)])
        return set()
    R.check("rules: files load", [])

    alerts, problems, used = {}, [], set()
    for g in rules_doc.get("groups", []):
        for r in g.get("rules", []):
            name = r.get("alert") or r.get("record")
            expr = r.get("expr", "")
            used |= metrics_in(expr)
            problems += lint_expr(expr, f"rule {name}")
            if "alert" not in r:
                continue
            alerts[name] = r
            labels, ann = r.get("labels", {}), r.get("annotations", {})
            if labels.get("severity") not in ("critical", "warning", "info"):
                problems.append(f"rule {name}: severity label is {labels.get('severity')!r}")
            for key in ("summary", "description", "runbook"):
                if not (ann.get(key) or "").strip():
                    problems.append(f"rule {name}: no {key} annotation")
    R.check("rules: every alert has a severity label, summary, description and runbook; "
            "every metric and label is one the binaries export", problems)
    R.check("rules: the alerts the issue asks for exist",
            [f"missing alert {a}" for a in sorted(REQUIRED_ALERTS - alerts.keys())])
    R.check("rules: agent down and collector down use up == 0 on the tokenwatch jobs",
            [f"{a} does not test up{{job=\"{job}\"}} == 0"
             for a, job in (("TokenwatchCollectorDown", "tokenwatch-collector"),
                            ("TokenwatchAgentDown", "tokenwatch-agent"))
             if a in alerts and not re.search(r'up\{job="' + job + r'"\}\s*==\s*0', alerts[a]["expr"])])

    # Every alert is tested firing and not firing.
    fires, quiet = set(), set()
    for t in test_doc.get("tests", []):
        for case in t.get("alert_rule_test", []) or []:
            (fires if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    problems = []
    for a in sorted(alerts):
        if a not in fires:
            problems.append(f"{a}: no test case where it fires")
        if a not in quiet:
            problems.append(f"{a}: no test case where it does not fire")
    for a in sorted((fires | quiet) - alerts.keys()):
        problems.append(f"tests name {a}, which is not a rule")
    R.check("rules_test.yml: every alert is tested firing and not firing", problems)

    if promtool:
        res = run([promtool, "check", "rules", RULES_FILE])
        R.check("promtool check rules dashboards/prometheus/tokenwatch.rules.yml",
                [] if res.returncode == 0 else res.stdout.splitlines())
        res = run([promtool, "test", "rules", RULES_TEST], cwd=ROOT)
        if VERBOSE or res.returncode:
            print(res.stdout)
        R.check("promtool test rules tests/dashboards/rules_test.yml",
                [] if res.returncode == 0 else ["see the promtool output above"])
    else:
        R.check("promtool check/test rules", promtool_problems)
    return used


# ---------------------------------------------------------------------------
# Prometheus, Alertmanager and Grafana provisioning configs

def check_prometheus_config(promtool, promtool_problems):
    problems = []
    try:
        with open(PROM_FILE) as f:
            doc = yaml.safe_load(f)
        jobs = {sc.get("job_name"): [t for s in sc.get("static_configs", []) for t in s.get("targets", [])]
                for sc in doc.get("scrape_configs", [])}
        if COLLECTOR_TARGET not in jobs.get("tokenwatch-collector", []):
            problems.append(f"job tokenwatch-collector does not scrape {COLLECTOR_TARGET}")
        if AGENT_TARGET not in jobs.get("tokenwatch-agent", []):
            problems.append(f"job tokenwatch-agent does not scrape {AGENT_TARGET}")
        rule_files = [os.path.normpath(os.path.join(os.path.dirname(PROM_FILE), r))
                      for r in doc.get("rule_files", [])]
        if RULES_FILE not in rule_files:
            problems.append("rule_files does not load tokenwatch.rules.yml")
    except (OSError, yaml.YAMLError, AttributeError) as e:
        problems.append(str(e))
    R.check("prometheus.yml: loopback jobs tokenwatch-collector and tokenwatch-agent, loads the rules", problems)
    if promtool:
        res = run([promtool, "check", "config", PROM_FILE])
        R.check("promtool check config dashboards/prometheus/prometheus.yml",
                [] if res.returncode == 0 else res.stdout.splitlines())
    else:
        R.check("promtool check config", promtool_problems)


def check_alertmanager_config():
    amtool, problems = tool("amtool", "prometheus-alertmanager")
    if not amtool:
        R.check("amtool check-config", problems)
        return
    res = run([amtool, "check-config", AM_FILE])
    R.check("amtool check-config dashboards/alertmanager/alertmanager.yml",
            [] if res.returncode == 0 else res.stdout.splitlines())
    problems = []
    try:
        with open(AM_FILE) as f:
            doc = yaml.safe_load(f)
        receiver = doc["route"]["receiver"]
        urls = [w.get("url", "") for r in doc.get("receivers", []) if r.get("name") == receiver
                for w in r.get("webhook_configs", [])]
        if not any(u.startswith(WEBHOOK_URL_PREFIX) for u in urls):
            problems.append(f"default receiver {receiver} has no webhook at {WEBHOOK_URL_PREFIX}")
        for labels in (["severity=critical", "alertname=TokenwatchCriticalAlert", "type=expired_use", "service=orders"],
                       ["severity=warning", "alertname=TokenwatchAgentDown"],
                       ["severity=high", "type=alg_none", "service=payments"]):
            res = run([amtool, "config", "routes", "test", f"--config.file={AM_FILE}",
                       f"--verify.receivers={receiver}", *labels])
            if res.returncode != 0:
                problems.append(f"{' '.join(labels)} is not routed to {receiver}: {res.stdout.strip()}")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        problems.append(str(e))
    R.check("alertmanager.yml: tokenwatch alerts route to the webhook at 127.0.0.1:5001", problems)


def check_provisioning():
    problems = []
    try:
        with open(DS_FILE) as f:
            doc = yaml.safe_load(f)
        sources = doc.get("datasources", [])
        ours = [s for s in sources if s.get("uid") == DS_UID]
        if doc.get("apiVersion") != 1:
            problems.append("datasource file: apiVersion must be 1")
        if len(ours) != 1:
            problems.append(f"datasource file: want one datasource with uid {DS_UID}")
        else:
            s = ours[0]
            if s.get("type") != "prometheus":
                problems.append("datasource type must be prometheus")
            if not str(s.get("url", "")).strip():
                problems.append("datasource has no url")
            if ":-" in str(s.get("url", "")):
                problems.append("Grafana does not expand ${VAR:-default}; use a plain url or $VAR")
    except (OSError, yaml.YAMLError, AttributeError) as e:
        problems.append(str(e))
    R.check(f"provisioning: datasource {DS_UID} (prometheus, with a url)", problems)

    problems = []
    try:
        with open(PROVIDER_FILE) as f:
            doc = yaml.safe_load(f)
        providers = doc.get("providers", [])
        if doc.get("apiVersion") != 1 or len(providers) != 1:
            problems.append("dashboard provider file: want apiVersion 1 and one provider")
        for p in providers:
            if p.get("type") != "file":
                problems.append("provider type must be file")
            path = str((p.get("options") or {}).get("path", ""))
            if not (path.rstrip("/").endswith("dashboards/grafana") or path.startswith("$")):
                problems.append(f"provider path {path!r} does not point at a dashboards/grafana folder")
    except (OSError, yaml.YAMLError, AttributeError) as e:
        problems.append(str(e))
    R.check("provisioning: file provider for the dashboards/grafana folder", problems)


def main():
    promtool, promtool_problems = tool("promtool", "prometheus")

    dash_metrics, parse_list = check_dashboards(promtool)
    if promtool:
        R.check(f"promtool parses every dashboard expression ({len(parse_list)})",
                promql_parses(parse_list, promtool))
    else:
        R.check("promtool parses every dashboard expression", promtool_problems)

    res = run([sys.executable, GENERATOR, "--check"])
    R.check("dashboards/grafana/*.json are what generate_dashboards.py produces",
            [] if res.returncode == 0 else res.stdout.splitlines())

    rule_metrics = check_rules(promtool, promtool_problems)
    R.check("every exported metric appears on a dashboard",
            [f"{m} is on no dashboard" for m in sorted(METRICS.keys() - dash_metrics)])
    if VERBOSE:
        print(f"     metrics used by rules: {', '.join(sorted(rule_metrics))}")

    check_prometheus_config(promtool, promtool_problems)
    check_alertmanager_config()
    check_provisioning()

    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())

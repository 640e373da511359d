#!/usr/bin/env python3
"""Generates the tokenwatch Grafana dashboards in dashboards/grafana/.

The JSON files are the product (Grafana reads them through
dashboards/provisioning/dashboards/tokenwatch.yaml); this script is their
source, so every panel gets the same datasource, layout rules and a
description that says what it shows and what to do when it lights up.

    python3 dashboards/generate_dashboards.py            # rewrite the JSON files
    python3 dashboards/generate_dashboards.py --check    # exit 1 if they are stale
    python3 dashboards/generate_dashboards.py --markdown # panel table for the README

tests/dashboards/check_assets.py runs --check, so edit this file, not the
JSON (or regenerate after an export from Grafana).
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "grafana")

DS_UID = "tokenwatch-prometheus"
DS = {"type": "prometheus", "uid": DS_UID}
SCHEMA_VERSION = 39

# Colours used for fixed series.
RED, ORANGE, YELLOW, GREEN, BLUE, PURPLE, GREY = (
    "red", "orange", "yellow", "green", "blue", "purple", "text")


# --------------------------------------------------------------------------
# Template variables

def query_variable(name, label, query, description):
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,          # on time range change
        "regex": "",
        "sort": 1,             # alphabetical
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


SERVICE_VAR = query_variable(
    "service", "Service",
    "label_values(tokenwatch_collector_token_uses_total, service)",
    "Services as attributed by the agents (config services[].name, else host:port).")
AGENT_VAR_COLLECTOR = query_variable(
    "agent", "Agent",
    "label_values(tokenwatch_collector_events_received_total, agent)",
    "Agents that have streamed events to the collector.")
AGENT_VAR_AGENT = query_variable(
    "agent", "Agent",
    "label_values(tokenwatch_agent_packets_total, agent)",
    "Agents scraped by Prometheus (job tokenwatch-agent).")

# Firing tokenwatch Prometheus alerts drawn on every time series panel.
ALERT_ANNOTATION = {
    "name": "tokenwatch alerts firing",
    "datasource": DS,
    "enable": True,
    "hide": False,
    "iconColor": "red",
    "expr": 'ALERTS{alertname=~"Tokenwatch.*", alertstate="firing"}',
    "step": "60s",
    "titleFormat": "{{alertname}}",
    "textFormat": "{{severity}} {{type}} {{service}} {{agent}} {{instance}}",
    "tagKeys": "severity",
    "useValueForTime": False,
}


# --------------------------------------------------------------------------
# Panels

def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    return {
        "refId": ref,
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }


def thresholds(*steps):
    """steps: (value, colour) pairs after the base colour, e.g. (1, RED)."""
    base = [{"color": GREEN, "value": None}]
    return {"mode": "absolute",
            "steps": base + [{"color": c, "value": v} for v, c in steps]}


def colour_override(name, colour, display=None):
    props = [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}]
    if display:
        props.append({"id": "displayName", "value": display})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def timeseries(title, description, targets, unit="short", stack=False,
               bars=False, overrides=(), threshold_steps=(), decimals=None,
               axis_label="", min_zero=True):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else (25 if stack else 10),
        "gradientMode": "none",
        "showPoints": "never",
        "spanNulls": False,
        "axisLabel": axis_label,
        "axisPlacement": "auto",
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if threshold_steps else "off"},
    }
    defaults = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": thresholds(*threshold_steps),
    }
    if min_zero:
        defaults["min"] = 0
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": list(targets),
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom",
                       "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title, description, targets, unit="short", threshold_steps=(),
         mappings=(), graph=False, decimals=None):
    defaults = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds(*threshold_steps),
        "mappings": list(mappings),
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": list(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def table(title, description, targets, hide=("Time",), rename=None):
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": list(targets),
        "fieldConfig": {"defaults": {"unit": "short", "decimals": 0,
                                     "custom": {"align": "auto"}},
                        "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm",
                    "sortBy": [{"displayName": "Alerts", "desc": True}]},
        "transformations": [{
            "id": "organize",
            "options": {"excludeByName": {h: True for h in hide},
                        "renameByName": dict(rename or {})},
        }],
    }


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


UP_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "DOWN", "color": RED, "index": 0},
    "1": {"text": "UP", "color": GREEN, "index": 1}}}]

STATUS_CLASS_COLOURS = [
    colour_override("2xx", GREEN), colour_override("3xx", BLUE),
    colour_override("4xx", ORANGE), colour_override("5xx", RED),
    colour_override("1xx", PURPLE), colour_override("none", GREY, "none (no response)"),
]


# --------------------------------------------------------------------------
# Layout

def layout(items):
    """items: panels (with '_w', '_h') and rows, in reading order."""
    panels, x, y, line_h, next_id = [], 0, 0, 0, 1
    for p in items:
        p = dict(p)
        if p["type"] == "row":
            if x:
                y, x = y + line_h, 0
            p["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            line_h = 0
        else:
            w, h = p.pop("_w"), p.pop("_h")
            if x + w > 24:
                y, x, line_h = y + line_h, 0, 0
            p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            x += w
            line_h = max(line_h, h)
        p["id"] = next_id
        next_id += 1
        panels.append(p)
    return panels


def sized(panel, w, h):
    panel["_w"], panel["_h"] = w, h
    return panel


def dashboard(uid, title, description, variables, items):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["tokenwatch"],
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "weekStart": "",
        "annotations": {"list": [ALERT_ANNOTATION]},
        "links": [{"type": "dashboards", "tags": ["tokenwatch"], "asDropdown": False,
                   "includeVars": True, "keepTime": True, "title": "tokenwatch",
                   "icon": "external link", "targetBlank": False, "tooltip": "",
                   "url": ""}],
        "templating": {"list": list(variables)},
        "panels": layout(items),
    }


# --------------------------------------------------------------------------
# Fleet overview

S = 'service=~"$service"'
A = 'agent=~"$agent"'
RI = "$__rate_interval"


def fleet_overview():
    items = [
        sized(stat(
            "Critical alerts (time range)",
            "Critical tokenwatch alerts raised in the selected time range (all types, "
            "selected services). Anything above 0: open the collector's "
            "/api/v1/alerts and read the alert records; the Prometheus alert "
            "TokenwatchCriticalAlert pages for the same thing.",
            [target(f'round(sum(increase(tokenwatch_collector_alerts_total{{severity="critical", {S}}}[$__range]))) or vector(0)',
                    "critical", instant=True)],
            threshold_steps=((1, RED),), decimals=0), 4, 4),
        sized(stat(
            "Alerts (time range)",
            "tokenwatch alerts of every severity raised in the selected time range "
            "(selected services). Counts alerting token uses: the first use of a "
            "(type, token, service) raises the alert record, repeats add to its count.",
            [target(f'round(sum(increase(tokenwatch_collector_alerts_total{{{S}}}[$__range]))) or vector(0)',
                    "alerts", instant=True)],
            threshold_steps=((1, YELLOW),), decimals=0), 4, 4),
        sized(stat(
            "Token uses / s",
            "Token uses per second seen by all agents at the selected services. "
            "A sudden drop to 0 with traffic still flowing means agents stopped "
            "seeing tokens: check the Agent health dashboard.",
            [target(f'sum(rate(tokenwatch_collector_token_uses_total{{{S}}}[{RI}])) or vector(0)', "uses/s")],
            unit="reqps", graph=True, threshold_steps=()), 4, 4),
        sized(stat(
            "Tokens tracked",
            "Token identities the collector currently keeps state for. Steady "
            "growth without plateau means tokens are minted per request or "
            "state is never expired.",
            [target("sum(tokenwatch_collector_tokens_tracked)", "tokens")],
            graph=True, threshold_steps=()), 4, 4),
        sized(stat(
            "Agents up",
            "Agent /metrics endpoints Prometheus scrapes successfully (job "
            "tokenwatch-agent). Fewer than you deploy: an agent is down or "
            "unreachable and its hosts are unwatched (alert TokenwatchAgentDown).",
            [target('sum(up{job="tokenwatch-agent"}) or vector(0)', "agents up")],
            threshold_steps=()), 4, 4),
        sized(stat(
            "Collector",
            "Whether Prometheus can scrape the collector (job tokenwatch-collector). "
            "DOWN: no detections are running (alert TokenwatchCollectorDown).",
            [target('min(up{job="tokenwatch-collector"})', "collector")],
            mappings=UP_MAPPINGS, threshold_steps=()), 4, 4),

        sized(timeseries(
            "Token uses by service",
            "Token uses per second per service (every use of a bearer token or "
            "JWT, whatever the response). A service that suddenly sees many more "
            "tokens than usual may be under credential stuffing or replay.",
            [target(f'sum by (service) (rate(tokenwatch_collector_token_uses_total{{{S}}}[{RI}]))', "{{service}}")],
            unit="reqps", stack=True), 12, 8),
        sized(timeseries(
            "Alerts over time by type",
            "Alerting token uses per minute, by alert type (selected services). "
            "A spike of one type points at one cause: read the alert records of "
            "that type in /api/v1/alerts.",
            [target(f'sum by (type) (rate(tokenwatch_collector_alerts_total{{{S}}}[{RI}])) * 60', "{{type}}")],
            unit="short", stack=True, axis_label="alerts / min"), 12, 8),

        sized(timeseries(
            "Expired-token use: accepted vs rejected",
            "Uses of tokens past exp + leeway per minute, split by whether the "
            "service accepted them (status < 400). Rejected is the system working; "
            "ANY accepted use means a service does not check exp: fix its token "
            "validation. unknown = no response seen.",
            [target(f'sum by (accepted) (rate(tokenwatch_collector_expired_uses_total{{{S}}}[{RI}])) * 60', "{{accepted}}")],
            unit="short", axis_label="uses / min",
            overrides=[colour_override("true", RED, "accepted (service did not check exp)"),
                       colour_override("false", GREEN, "rejected"),
                       colour_override("unknown", GREY, "no response seen")]), 8, 8),
        sized(timeseries(
            "Cross-service tokens",
            "Tokens newly seen at a second service whose aud does not cover both "
            "(cross_service alerts per minute, by the service they reached). "
            "Means a token minted for one API is replayed against another: check "
            "the service validates aud.",
            [target(f'sum by (service) (rate(tokenwatch_collector_alerts_total{{type="cross_service", {S}}}[{RI}])) * 60', "{{service}}")],
            unit="short", axis_label="tokens / min"), 8, 8),
        sized(timeseries(
            "Sensitive-endpoint touches",
            "Tokens touching configured sensitive endpoints (sensitive_endpoint "
            "alerts per minute, by service and severity). critical = required "
            "scopes missing and the call was accepted: check who holds the token.",
            [target(f'sum by (service, severity) (rate(tokenwatch_collector_alerts_total{{type="sensitive_endpoint", {S}}}[{RI}])) * 60',
                    "{{service}} ({{severity}})")],
            unit="short", axis_label="tokens / min"), 8, 8),

        sized(table(
            "Alerts by type and severity (time range)",
            "Alerts raised in the selected time range per type and severity "
            "(selected services), largest first.",
            [target(f'round(sum by (type, severity) (increase(tokenwatch_collector_alerts_total{{{S}}}[$__range]))) > 0',
                    "", instant=True, fmt="table")],
            rename={"type": "Type", "severity": "Severity", "Value": "Alerts"}), 12, 8),
        sized(timeseries(
            "Events received by agent",
            "Usage events per second the collector receives from each agent. "
            "An agent whose line drops to 0 while its host serves traffic has "
            "stopped capturing or cannot reach the collector.",
            [target(f'sum by (agent) (rate(tokenwatch_collector_events_received_total{{{A}}}[{RI}]))', "{{agent}}")],
            unit="ops"), 12, 8),
    ]
    return dashboard(
        "tokenwatch-fleet", "tokenwatch / Fleet overview",
        "How tokens behave across the fleet: uses, alerts, expired and cross-service tokens.",
        [SERVICE_VAR, AGENT_VAR_COLLECTOR], items)


# --------------------------------------------------------------------------
# Token behaviour

def token_behaviour():
    per_service = timeseries(
        "Uses by status class: $service",
        "Token uses per second at this service by response status class. "
        "Rising 4xx means the service rejects tokens (expired, wrong audience, "
        "probing); 2xx for tokens tokenwatch flags means the service accepts "
        "them; none = no response seen (connection cut or capture ended).",
        [target('sum by (status_class) (rate(tokenwatch_collector_token_uses_total{service=~"$service"}[$__rate_interval]))',
                "{{status_class}}")],
        unit="reqps", stack=True, overrides=STATUS_CLASS_COLOURS)
    per_service.update({"repeat": "service", "repeatDirection": "h", "maxPerRow": 3})

    def alert_group(title, types, what):
        return timeseries(
            title, what,
            [target(f'sum by (type, service) (rate(tokenwatch_collector_alerts_total{{type=~"{types}", {S}}}[{RI}])) * 60',
                    "{{type}} @ {{service}}")],
            unit="short", stack=True, axis_label="alerts / min")

    items = [
        row("Per service"),
        sized(per_service, 8, 8),

        row("Across services"),
        sized(timeseries(
            "Rejected share by service",
            "Share of token uses answered 4xx or 5xx, per service. A jump at one "
            "service after a deploy or key rotation means it no longer accepts "
            "valid tokens (issuer keys, audience, clock).",
            [target(f'sum by (service) (rate(tokenwatch_collector_token_uses_total{{status_class=~"4xx|5xx", {S}}}[{RI}])) '
                    f'/ sum by (service) (rate(tokenwatch_collector_token_uses_total{{{S}}}[{RI}]))', "{{service}}")],
            unit="percentunit", decimals=1), 12, 8),
        sized(table(
            "Alert types by service (time range)",
            "Alerts raised in the selected time range per service and type, "
            "largest first: which service has which token problem.",
            [target(f'round(sum by (service, type) (increase(tokenwatch_collector_alerts_total{{{S}}}[$__range]))) > 0',
                    "", instant=True, fmt="table")],
            rename={"service": "Service", "type": "Type", "Value": "Alerts"}), 12, 8),
        sized(alert_group(
            "Signature and algorithm alerts",
            "alg_none|alg_not_allowed|invalid_signature|weak_secret|header_injection",
            "alg_none, alg_not_allowed, invalid_signature, weak_secret and "
            "header_injection alerts per minute by type and service. Any of these "
            "is a forged or forgeable token: if the use was accepted, the service "
            "verifies signatures wrongly; rotate weak secrets."), 8, 8),
        sized(alert_group(
            "Lifetime and hygiene alerts",
            "expired_use|not_yet_valid|no_expiry|long_lived|revoked_use|token_in_url",
            "expired_use, not_yet_valid, no_expiry, long_lived, revoked_use and "
            "token_in_url alerts per minute by type and service. Mostly issuer or "
            "client configuration: shorten lifetimes, stop putting tokens in URLs, "
            "check revoked tokens are refused."), 8, 8),
        sized(alert_group(
            "Misuse alerts",
            "cross_service|audience_mismatch|multi_source|sensitive_endpoint",
            "cross_service, audience_mismatch, multi_source and sensitive_endpoint "
            "alerts per minute by type and service. These point at a token used "
            "where or by whom it should not be: look up the token in "
            "/api/v1/tokens/{id} and consider revoking it."), 8, 8),

        row("Collector state"),
        sized(timeseries(
            "Tokens tracked",
            "Token identities the collector keeps state for, per collector. Growth "
            "without plateau: tokens minted per request, or state never expires.",
            [target("sum by (instance) (tokenwatch_collector_tokens_tracked)", "{{instance}}")]), 6, 8),
        sized(timeseries(
            "Bytes per tracked token",
            "Average state size of one tracked token. Growth means tokens are "
            "used from ever more services, clients or endpoints.",
            [target("avg by (instance) (tokenwatch_collector_token_bytes_per_token)", "{{instance}}")],
            unit="bytes"), 6, 8),
        sized(timeseries(
            "Token state size (estimate)",
            "Tokens tracked x bytes per token: the memory the per-token state "
            "needs. Compare with the collector's memory limit.",
            [target("sum by (instance) (tokenwatch_collector_tokens_tracked * tokenwatch_collector_token_bytes_per_token)",
                    "{{instance}}")],
            unit="bytes"), 6, 8),
        sized(timeseries(
            "Detector time",
            "Share of one CPU core spent in each detector. One detector dominating "
            "or the sum nearing 100% means the collector cannot keep up: check "
            "the delivery lag on the Agent health dashboard.",
            [target(f"sum by (detector) (rate(tokenwatch_collector_detector_seconds_total[{RI}]))", "{{detector}}")],
            unit="percentunit", stack=True), 6, 8),
    ]
    return dashboard(
        "tokenwatch-tokens", "tokenwatch / Token behaviour",
        "Per-service token behaviour: responses, alert types, and the collector's token state.",
        [SERVICE_VAR], items)


# --------------------------------------------------------------------------
# Agent health

def agent_health():
    items = [
        row("Status"),
        sized(stat(
            "Agents up",
            "Agent /metrics endpoints Prometheus scrapes successfully. Fewer than "
            "deployed: alert TokenwatchAgentDown; check the agent service on that host.",
            [target('sum(up{job="tokenwatch-agent"}) or vector(0)', "agents up")]), 4, 4),
        sized(stat(
            "Capture drop ratio (time range)",
            "Packets the kernel or interface dropped before the agent saw them, as "
            "a share of all packets (selected agents). Above 1%: tokens are "
            "missed; narrow the BPF filter, give the agent more CPU or split the traffic.",
            [target(f'sum(increase(tokenwatch_agent_capture_drops_total{{{A}}}[$__range])) / '
                    f'(sum(increase(tokenwatch_agent_packets_total{{{A}}}[$__range])) + '
                    f'sum(increase(tokenwatch_agent_capture_drops_total{{{A}}}[$__range])))', "drop ratio", instant=True)],
            unit="percentunit", threshold_steps=((0.001, YELLOW), (0.01, RED)), decimals=2), 4, 4),
        sized(stat(
            "Max delivery lag",
            "Age of the oldest event not yet acknowledged by the collector, worst "
            "agent. Above a minute: the collector is slow or unreachable "
            "(alert TokenwatchDeliveryLagHigh).",
            [target(f'max(tokenwatch_agent_delivery_lag_seconds{{{A}}})', "lag")],
            unit="s", threshold_steps=((60, ORANGE), (300, RED))), 4, 4),
        sized(stat(
            "Events awaiting ack",
            "Events queued on the agents and not yet acknowledged by the collector.",
            [target(f'sum(tokenwatch_agent_queue_events{{{A}}})', "queued")],
            threshold_steps=()), 4, 4),
        sized(stat(
            "Events dropped (time range)",
            "Events the agents threw away because their queue was full. Above 0: "
            "detections were lost (alert TokenwatchEventsDropped); fix the "
            "collector link first.",
            [target(f'round(sum(increase(tokenwatch_agent_events_total{{state="dropped", {A}}}[$__range]))) or vector(0)',
                    "dropped", instant=True)],
            threshold_steps=((1, RED),), decimals=0), 4, 4),
        sized(stat(
            "Collector reconnects (time range)",
            "Times the agents re-opened their stream to the collector. A few after "
            "a collector restart are normal; a steady count means a flapping link.",
            [target(f'round(sum(increase(tokenwatch_agent_collector_reconnects_total{{{A}}}[$__range]))) or vector(0)',
                    "reconnects", instant=True)],
            threshold_steps=((1, YELLOW), (10, RED)), decimals=0), 4, 4),

        row("Capture"),
        sized(timeseries(
            "Packets / s",
            "Packets per second each agent processes. A line dropping to 0 while "
            "the host serves traffic: capture stopped (interface, filter, permissions).",
            [target(f'sum by (agent) (rate(tokenwatch_agent_packets_total{{{A}}}[{RI}]))', "{{agent}}")],
            unit="pps"), 8, 8),
        sized(timeseries(
            "Traffic",
            "Bits per second each agent processes.",
            [target(f'sum by (agent) (rate(tokenwatch_agent_bytes_total{{{A}}}[{RI}])) * 8', "{{agent}}")],
            unit="bps"), 8, 8),
        sized(timeseries(
            "Capture drops",
            "Packets dropped per second by the kernel or the interface (pcap_stats) "
            "before the agent saw them, per agent and reason. Anything sustained: "
            "the agent is too slow for the traffic; see Stage time.",
            [target(f'sum by (agent, reason) (rate(tokenwatch_agent_capture_drops_total{{{A}}}[{RI}]))', "{{agent}} {{reason}}")],
            unit="pps"), 8, 8),
        sized(timeseries(
            "Stage time",
            "Share of one CPU core each pipeline stage uses (capture, decode, "
            "tcp_http, output), selected agents. The stage nearing 100% is the "
            "bottleneck when capture drops appear.",
            [target(f'sum by (stage) (rate(tokenwatch_agent_stage_seconds_total{{{A}}}[{RI}]))', "{{stage}}")],
            unit="percentunit", stack=True), 12, 8),
        sized(timeseries(
            "TCP flows",
            "Connections tracked (left axis) and new connections per second "
            "(right axis). Active flows near agent.limits.max_flows causes "
            "flow_table_full drops.",
            [target(f'sum by (agent) (tokenwatch_agent_flows_active{{{A}}})', "{{agent}} active", "A"),
             target(f'sum by (agent) (rate(tokenwatch_agent_flows_total{{{A}}}[{RI}]))', "{{agent}} new/s", "B")],
            overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                       {"id": "unit", "value": "ops"}]}]), 12, 8),

        row("Parsing"),
        sized(timeseries(
            "Parse anomalies",
            "Protocol anomalies per second by name (TCP content gaps, bad request "
            "lines, Content-Length with chunked, ...). A burst of one name from one "
            "client can be request smuggling or evasion; tcp_content_gap follows "
            "capture drops.",
            [target(f'sum by (name) (rate(tokenwatch_agent_anomalies_total{{{A}}}[{RI}]))', "{{name}}")],
            unit="ops", stack=True), 8, 8),
        sized(timeseries(
            "Drops by reason",
            "Data the agent gave up on per second, by reason (flow table, "
            "reassembly caps, header size, token limits, IP fragments). Each "
            "reason maps to an agent.limits key in the config reference; raise "
            "it if the drops are legitimate traffic.",
            [target(f'sum by (reason) (rate(tokenwatch_agent_drops_total{{{A}}}[{RI}]))', "{{reason}}")],
            unit="ops", stack=True), 8, 8),
        sized(timeseries(
            "Reassembly buffer",
            "Out-of-order bytes held for reassembly, per agent. Near "
            "agent.limits.total_buffer_bytes: reassembly_global_cap drops follow.",
            [target(f'sum by (agent) (tokenwatch_agent_reassembly_buffered_bytes{{{A}}})', "{{agent}}")],
            unit="bytes"), 8, 8),
        sized(timeseries(
            "HTTP messages / s",
            "HTTP requests and responses parsed per second. Requests without "
            "responses: asymmetric capture (only one direction is visible).",
            [target(f'sum by (direction) (rate(tokenwatch_agent_http_messages_total{{{A}}}[{RI}]))', "{{direction}}")],
            unit="ops"), 6, 8),
        sized(timeseries(
            "Tokens by kind",
            "Tokens found per second by kind (jwt, opaque, jwe).",
            [target(f'sum by (kind) (rate(tokenwatch_agent_tokens_total{{{A}}}[{RI}]))', "{{kind}}")],
            unit="ops", stack=True), 6, 8),
        sized(timeseries(
            "Malformed tokens",
            "Tokens that failed to decode per second, by reason. A sudden rise "
            "from one client can be fuzzing of the services' token parsers.",
            [target(f'sum by (reason) (rate(tokenwatch_agent_malformed_tokens_total{{{A}}}[{RI}]))', "{{reason}}")],
            unit="ops", stack=True), 6, 8),
        sized(timeseries(
            "Token cache hit ratio",
            "Share of token lookups answered by the decoded-token cache, per agent. "
            "Low with steady traffic: raise agent.limits.token_cache_entries.",
            [target(f'sum by (agent) (rate(tokenwatch_agent_token_cache_lookups_total{{result="hit", {A}}}[{RI}])) / '
                    f'sum by (agent) (rate(tokenwatch_agent_token_cache_lookups_total{{{A}}}[{RI}]))', "{{agent}}")],
            unit="percentunit", decimals=1), 6, 8),

        row("Delivery to the collector"),
        sized(timeseries(
            "Queue depth",
            "Events queued on each agent and not yet acknowledged by the collector. "
            "Rising without falling: the collector is down, slow or unreachable; "
            "when the queue is full, events are dropped.",
            [target(f'sum by (agent) (tokenwatch_agent_queue_events{{{A}}})', "{{agent}}")]), 6, 8),
        sized(timeseries(
            "Delivery lag",
            "Age of the oldest unacknowledged event per agent. Lines at 1 and 5 "
            "minutes; above them, alerts reach operators late (alert "
            "TokenwatchDeliveryLagHigh).",
            [target(f'max by (agent) (tokenwatch_agent_delivery_lag_seconds{{{A}}})', "{{agent}}")],
            unit="s", threshold_steps=((60, ORANGE), (300, RED))), 6, 8),
        sized(timeseries(
            "Events by state",
            "Events per second queued, sent, acknowledged and dropped (selected "
            "agents). acked should follow queued; any dropped is lost data.",
            [target(f'sum by (state) (rate(tokenwatch_agent_events_total{{{A}}}[{RI}]))', "{{state}}")],
            unit="ops", overrides=[colour_override("dropped", RED), colour_override("acked", GREEN)]), 6, 8),
        sized(timeseries(
            "Collector reconnects",
            "Stream re-opens per agent in each interval. Repeated reconnects: "
            "network trouble or a crashing collector (alert TokenwatchAgentReconnecting).",
            [target(f'sum by (agent) (increase(tokenwatch_agent_collector_reconnects_total{{{A}}}[{RI}]))', "{{agent}}")],
            decimals=0, bars=True), 6, 8),

        row("Collector ingest and alert delivery"),
        sized(timeseries(
            "Events received / s (collector side)",
            "Events per second the collector receives from each agent; compare with "
            "the agents' sent rate.",
            [target(f'sum by (agent) (rate(tokenwatch_collector_events_received_total{{{A}}}[{RI}]))', "{{agent}}")],
            unit="ops"), 8, 8),
        sized(timeseries(
            "Batches and duplicates",
            "Batches per second per agent, and batches the collector discarded as "
            "duplicates (an agent re-sent after a lost acknowledgement). "
            "Duplicates are harmless; many mean acks are lost.",
            [target(f'sum by (agent) (rate(tokenwatch_collector_batches_total{{{A}}}[{RI}]))', "{{agent}}", "A"),
             target(f'sum(rate(tokenwatch_collector_duplicate_batches_total[{RI}]))', "duplicates", "B")],
            unit="ops", overrides=[colour_override("duplicates", ORANGE)]), 8, 8),
        sized(timeseries(
            "Open agent streams",
            "gRPC streams open on the collector; one per connected agent. "
            "Lower than the agents up: some agents cannot reach the collector.",
            [target("sum by (instance) (tokenwatch_collector_open_streams)", "{{instance}}")],
            decimals=0), 8, 8),
        sized(timeseries(
            "Store commit latency",
            "Median, 99th percentile and mean time to commit a batch of state to the store. "
            "Rising: slow disk or a large store; ingest and acknowledgements slow "
            "down with it.",
            [target(f"histogram_quantile(0.5, sum by (le) (rate(tokenwatch_collector_store_commit_seconds_bucket[{RI}])))", "p50", "A"),
             target(f"histogram_quantile(0.99, sum by (le) (rate(tokenwatch_collector_store_commit_seconds_bucket[{RI}])))", "p99", "B"),
             target(f"sum(rate(tokenwatch_collector_store_commit_seconds_sum[{RI}])) / "
                    f"sum(rate(tokenwatch_collector_store_commit_seconds_count[{RI}]))", "mean", "C")],
            unit="s"), 8, 8),
        sized(timeseries(
            "Store commit failures",
            "Failed store commits per interval. Any: state is not persisted (disk "
            "full, permissions, locked database); see the collector log "
            "(alert TokenwatchStoreCommitFailures).",
            [target(f"sum(increase(tokenwatch_collector_store_commit_failures_total[{RI}]))", "failures")],
            decimals=0, bars=True, overrides=[colour_override("failures", RED)]), 8, 8),
        sized(timeseries(
            "Alert deliveries",
            "Alert deliveries per second to Alertmanager and webhooks by result. "
            "retry: the receiver failed and the alert is queued for another try; "
            "dropped: the retry queue overflowed and the alert was lost "
            "(alert TokenwatchAlertDeliveryDropped).",
            [target(f"sum by (sink, result) (rate(tokenwatch_collector_alert_deliveries_total[{RI}]))", "{{sink}} {{result}}")],
            unit="ops"), 8, 8),
    ]
    return dashboard(
        "tokenwatch-agents", "tokenwatch / Agent health",
        "Whether the agents see all the traffic and deliver every event: capture, parsing, queue, lag, collector ingest.",
        [AGENT_VAR_AGENT], items)


DASHBOARDS = {
    "fleet-overview.json": fleet_overview,
    "token-behaviour.json": token_behaviour,
    "agent-health.json": agent_health,
}


def render(build):
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def markdown():
    lines = []
    for name, build in DASHBOARDS.items():
        d = build()
        lines.append(f"\n### {d['title']} (`dashboards/grafana/{name}`)\n")
        lines.append("| panel | what it shows and what to do |")
        lines.append("|---|---|")
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            lines.append(f"| {p['title']} | {p['description']} |")
    return "\n".join(lines) + "\n"


def main(argv):
    if "--markdown" in argv:
        sys.stdout.write(markdown())
        return 0
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(OUT_DIR, name)
        text = render(build)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            os.makedirs(OUT_DIR, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {path}")
    if stale:
        print("stale (run dashboards/generate_dashboards.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

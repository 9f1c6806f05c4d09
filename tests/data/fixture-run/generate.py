#!/usr/bin/env python3
"""Generates this fixture run directory (kept in git; re-run only to change it).

Three repeats of image_classification on three VMs with a known, slightly noisy power profile,
Scaphandre-named samples (gauge + counter) scraped every second, one torn-read spike (#442) in
the gauge and one torn read in the counter of cloud0_u, and endpoint logs with per-frame latency.
Every scrape has its `up` row (1 = the VM's energy data came). endpoint0_u's exporter is down for
8 s in repeat 2 (from 12 s to 20 s after that repeat's start: `up` 0 with a connection error and
no samples), so its timeline line averages 2 repeats there and the summary names the gap.
"""
import json, math, os, random, datetime

random.seed(7)
here = os.path.dirname(os.path.abspath(__file__))
t0 = datetime.datetime(2026, 11, 29, 10, 0, 0, tzinfo=datetime.timezone.utc)
def wall(t):
    return (t0 + datetime.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"

vms = ["cloud_controller_u", "cloud0_u", "endpoint0_u"]
idle = {"cloud_controller_u": 4.0, "cloud0_u": 5.0, "endpoint0_u": 3.5}
app_w = {"cloud_controller_u": 7.5, "cloud0_u": 26.0, "endpoint0_u": 12.0}
wl_w = {"cloud_controller_u": 9.0, "cloud0_u": 17.0, "endpoint0_u": 4.0}
events, phases = [], []
def ev(t, phase, event, app="", repeat=-1, node="", details=None):
    events.append({"time": wall(t), "t": round(t, 6), "app": app, "repeat": repeat, "phase": phase,
                   "event": event, "node": node, "details": details or {}})

ev(0.0, "infrastructure", "start"); ev(60.0, "infrastructure", "end")
ev(61.0, "benchmark", "start", "image_classification", -1, "", {"repeats": 3})
start = 62.0
spans = []
for k in range(3):
    s = start + k * 45.0
    ev(s, "repeat", "start", "image_classification", k)
    ev(s + 2, "application", "start", "image_classification", k)
    ev(s + 32 + k * 0.5, "application", "end", "image_classification", k)
    ev(s + 33 + k * 0.5, "workload:queries", "start", "queries", k)
    ev(s + 39, "workload:queries", "end", "queries", k)
    ev(s + 40, "repeat", "end", "image_classification", k)
    spans.append((s, s + 2, s + 32 + k * 0.5, s + 33 + k * 0.5, s + 39, s + 40))
ev(start + 2 * 45 + 41, "benchmark", "end", "image_classification")
with open(os.path.join(here, "events.jsonl"), "w") as f:
    for e in sorted(events, key=lambda e: e["t"]):
        f.write(json.dumps(e, separators=(",", ":")) + "\n")

def power(vm, t):
    for k, (s, a0, a1, w0, w1, e) in enumerate(spans):
        if a0 <= t < a1:
            ramp = min(1.0, (t - a0) / 3.0)
            return idle[vm] + (app_w[vm] - idle[vm]) * ramp + 1.5 * math.sin(t / 2.0) + k * 0.6
        if w0 <= t < w1:
            return wl_w[vm] + 0.8 * math.sin(t)
    return idle[vm]

os.makedirs(os.path.join(here, "energy"), exist_ok=True)
rows = ["time,t,vm,target,metric,labels,value"]
energy = {vm: 7.0e9 + i * 1e9 for i, vm in enumerate(vms)}
t = start - 1.0
while t <= start + 2 * 45 + 41.5:
    for i, vm in enumerate(vms):
        ts = t + 0.003 * i + random.uniform(0, 0.004)
        p = max(0.0, power(vm, ts) + random.gauss(0, 0.3))
        energy[vm] += p * 1e6  # 1 s
        url = "http://127.0.0.1:%d/metrics" % (8080 + i)
        pw = p * 1e6
        en = energy[vm]
        if vm == "cloud0_u" and abs(t - (start + 45 + 10)) < 0.01:
            pw = 4.2e9  # torn read seen as a kW spike (#442)
        if vm == "cloud0_u" and abs(t - (start + 45 + 20)) < 0.01:
            en = 0.0    # torn read of energy_uj
        lab = '"{value_source=""powercap_rapl_psys""}"'
        self_cpu = random.uniform(0.5, 2)
        if vm == "endpoint0_u" and start + 2 * 45 + 12 <= t < start + 2 * 45 + 20:
            err = '"{error=""Failed to connect to 127.0.0.1 port 8082 after 0 ms: Couldn\'t connect to server""}"'
            rows.append("%s,%.6f,%s,%s,up,%s,0" % (wall(ts), ts, vm, url, err))
            continue
        rows.append("%s,%.6f,%s,%s,scaph_host_power_microwatts,%s,%.0f" % (wall(ts), ts, vm, url, lab, pw))
        rows.append("%s,%.6f,%s,%s,scaph_host_energy_microjoules,%s,%.0f" % (wall(ts), ts, vm, url, lab, en))
        rows.append("%s,%.6f,%s,%s,scaph_self_cpu_usage_percent,,%.2f" % (wall(ts), ts, vm, url, self_cpu))
        rows.append("%s,%.6f,%s,%s,up,,1" % (wall(ts), ts, vm, url))
    t += 1.0
with open(os.path.join(here, "energy", "samples.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")

for k, (s, a0, a1, w0, w1, e) in enumerate(spans):
    d = os.path.join(here, "benchmark", "repeat-%d" % k, "image_classification")
    os.makedirs(d, exist_ok=True)
    lines = []
    tt = a0
    while tt < a1 - 0.2:
        lat = random.lognormvariate(math.log(38 + 4 * k), 0.25)
        lines.append("%s Preparation and preprocessing (ns): %d" % (wall(tt), int(2.1e6 + random.uniform(0, 3e5))))
        lines.append("%s Sending data (bytes): %d" % (wall(tt), 16384))
        lines.append("%s Latency (ns): %d" % (wall(tt + lat / 1000), int(lat * 1e6)))
        tt += 0.2
    with open(os.path.join(d, "endpoint0.endpoint.log"), "w") as f:
        f.write("\n".join(lines) + "\n")

with open(os.path.join(here, "plan.json"), "w") as f:
    json.dump({"config_name": "fixture", "application": "image_classification"}, f)
    f.write("\n")

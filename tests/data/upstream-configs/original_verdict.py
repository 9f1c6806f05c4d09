#!/usr/bin/env python3
"""Decide, for every .cfg in this directory, whether the ORIGINAL tool (atlarge-research/continuum,
main 8c6e600) accepts or rejects it, and what continuum is expected to do.

This is a re-implementation of the original's parse + verify rules (docs/original.md §2: configparser,
option_check with type/condition/mandatory/default, plugin add_options and verify_options, in the
original's order), written for this table; it is not the original's code. It is run by hand by the
maintainers, not by the test suite:

    python3 tests/data/upstream-configs/original_verdict.py > tests/data/upstream-configs/verdicts.tsv

The same model runs twice: once as the original ("original" column) and once with continuum's
documented differences switched on ("continuum" column; docs/compatibility.md):
  * inline comments are stripped (a # or ; after whitespace; in numbers/booleans any # or ;),
  * a value wrapped in matching quotes is unquoted (so `aws_access_keys = ""` is empty),
  * stress and mem_usage also run with resource_manager = kube_kata.
tests/integration/upstream_corpus_test.cc runs `continuum validate` on every file and checks the
"continuum" column. Output columns: path, original, continuum, agree|differs, reason.

Assumptions about the original's environment: run from its repository root (the plugin
directories exist), the host has a route to 8.8.8.8 (the registry address lookup succeeds).
"""

import configparser
import os
import sys

PROVIDERS = ["qemu", "gcp", "aws", "baremetal"]
# resource_manager/ directories minus "endpoint", plus the pseudo-RMs mist and none.
RMS = ["kubernetes", "kubeedge", "kubecontrol", "kube_kata", "mist", "none"]
RM_MODULES = ["kubernetes", "kubeedge", "kubecontrol", "kube_kata"]  # mist loads kubeedge
APPS = ["image_classification", "empty", "empty_kata", "mem_usage", "stress", "signal_classification"]
MODELS = ["openfaas"]


class Reject(Exception):
    pass


class Model:
    def __init__(self, continuum):
        self.continuum = continuum

    # --- values ---------------------------------------------------------------------------
    def raw(self, inp, sec, opt):
        v = inp.get(sec, opt, raw=True)
        if not self.continuum:
            return v
        v = v.strip()
        if v[:1] in ('"', "'"):
            close = v.find(v[0], 1)
            if close >= 0:
                after = v[close + 1:].strip()
                if after == "" or after[0] in "#;":
                    return v[1:close]
        for i, c in enumerate(v):
            if c in "#;" and (i == 0 or v[i - 1] in " \t"):
                return v[:i].rstrip()
        return v

    def typed(self, inp, sec, opt):
        v = self.raw(inp, sec, opt)
        if self.continuum:
            for i, c in enumerate(v):
                if c in "#;":
                    return v[:i].strip()
        return v

    def option_check(self, inp, cfg, sec, opt, intype, cond, mandatory, default):
        if inp.has_option(sec, opt):
            if self.raw(inp, sec, opt) == "":
                if mandatory:
                    raise Reject("Config: Missing option %s->%s" % (sec, opt))
                cfg[sec][opt] = default if (default is None or isinstance(default, bool)) else intype(default)
                return
            try:
                if intype == int:
                    val = int(self.typed(inp, sec, opt))
                elif intype == float:
                    val = float(self.typed(inp, sec, opt))
                elif intype == bool:
                    val = configparser.ConfigParser.BOOLEAN_STATES.get(self.typed(inp, sec, opt).lower())
                    if val is None:
                        raise ValueError
                elif intype == str:
                    val = self.raw(inp, sec, opt)
                else:  # list
                    val = [s for s in self.raw(inp, sec, opt).split(",") if s.strip()]
                    if val == []:
                        return
            except ValueError:
                raise Reject("Config: Invalid type for option %s->%s, expected %s" % (sec, opt, intype))
            try:
                ok = cond(val)
            except (ValueError, IndexError) as e:  # the original crashes with a traceback
                raise Reject("crash in the condition of %s->%s: %r" % (sec, opt, e))
            if not ok:
                raise Reject("Config: Invalid value for option %s->%s" % (sec, opt))
            cfg[sec][opt] = val
        elif mandatory:
            raise Reject("Config: Missing option %s->%s" % (sec, opt))
        else:
            cfg[sec][opt] = default if (default is None or isinstance(default, bool)) else intype(default)

    # --- sections -------------------------------------------------------------------------
    def parse(self, path):
        inp = configparser.ConfigParser()
        try:
            inp.read(path)
        except configparser.Error as e:
            raise Reject("configparser: %s" % type(e).__name__)
        cfg = {}
        self.infrastructure(inp, cfg)
        self.network(inp, cfg)
        self.benchmark(inp, cfg)
        self.execution_model(inp, cfg)
        self.modules(cfg)
        self.add_options(inp, cfg)
        self.verify(cfg)
        return cfg

    def infrastructure(self, inp, cfg):
        sec = "infrastructure"
        if not inp.has_section(sec):
            raise Reject("Config: infrastructure section missing")
        cfg[sec] = {}
        for s in [
            ["provider", str, lambda x: x in PROVIDERS, True, None],
            ["infra_only", bool, lambda x: True, False, False],
            ["cloud_nodes", int, lambda x: x >= 0, False, 0],
            ["edge_nodes", int, lambda x: x >= 0, False, 0],
            ["endpoint_nodes", int, lambda x: x >= 0, False, 0],
        ]:
            self.option_check(inp, cfg, sec, *s)
        i = cfg[sec]
        if i["cloud_nodes"] + i["edge_nodes"] + i["endpoint_nodes"] == 0:
            raise Reject("Config: cloud_nodes + edge_nodes + endpoint_nodes should be > 0")
        cfg["mode"] = "edge" if i["edge_nodes"] else "cloud" if i["cloud_nodes"] else "endpoint"
        for tier in ["cloud", "edge", "endpoint"]:
            mandatory = i[tier + "_nodes"] > 0
            default = None if mandatory else 0
            for s in [
                [tier + "_cores", int, lambda x: x > 0, mandatory, default],
                [tier + "_memory", int, lambda x: x > 0, mandatory, default],
                [tier + "_quota", float, lambda x: 0.1 <= x <= 1.0, mandatory, default],
            ]:
                self.option_check(inp, cfg, sec, *s)

        def prefix(x):
            p = x.split(".")
            return len(p) == 2 and 0 < int(p[0]) < 255 and 0 < int(p[1]) < 255

        for s in [
            ["cloud_read_speed", int, lambda x: x >= 0, False, 0],
            ["edge_read_speed", int, lambda x: x >= 0, False, 0],
            ["endpoint_read_speed", int, lambda x: x >= 0, False, 0],
            ["cloud_write_speed", int, lambda x: x >= 0, False, 0],
            ["edge_write_speed", int, lambda x: x >= 0, False, 0],
            ["endpoint_write_speed", int, lambda x: x >= 0, False, 0],
            ["cpu_pin", bool, lambda x: True, False, False],
            ["external_physical_machines", list, lambda x: True, False, []],
            ["netperf", bool, lambda x: True, False, False],
            ["base_path", str, os.path.expanduser, False, os.getenv("HOME", "/root")],
            ["prefixIP", str, prefix, False, "192.168"],
            ["middleIP", int, lambda x: 0 < x < 255, False, "100"],
            ["middleIP_base", int, lambda x: 0 < x < 255, False, "90"],
            ["delete", bool, lambda x: True, False, False],
        ]:
            self.option_check(inp, cfg, sec, *s)
        if i["middleIP"] == i["middleIP_base"]:
            raise Reject("Config: middleIP == middleIP_base")

    def network(self, inp, cfg):
        sec = "infrastructure"
        self.option_check(inp, cfg, sec, "network_emulation", bool, lambda x: True, False, False)
        if not cfg[sec]["network_emulation"]:
            return
        self.option_check(inp, cfg, sec, "wireless_network_preset", str, lambda x: x in ["4g", "5g"], False, "4g")
        for pair in ["cloud", "edge", "cloud_edge", "cloud_endpoint", "edge_endpoint"]:
            self.option_check(inp, cfg, sec, pair + "_latency_avg", float, lambda x: x >= 0.0, False, -1)
            self.option_check(inp, cfg, sec, pair + "_latency_var", float, lambda x: x >= 0.0, False, -1)
            self.option_check(inp, cfg, sec, pair + "_throughput", float, lambda x: x >= 1.0, False, -1)

    def benchmark(self, inp, cfg):
        if cfg["infrastructure"]["infra_only"]:
            return
        sec = "benchmark"
        if not inp.has_section(sec):
            raise Reject("Config: benchmark section missing while infra_only=False")
        cfg[sec] = {}
        for s in [
            ["resource_manager", str, lambda x: x in RMS, True, None],
            ["resource_manager_only", bool, lambda x: True, False, None],
            ["docker_pull", bool, lambda x: True, False, None],
            ["application", str, lambda x: x in APPS, False, None],
        ]:
            self.option_check(inp, cfg, sec, *s)
        b = cfg[sec]
        if b["resource_manager_only"] and b["application"] is not None:
            raise Reject("ERROR: When resource_manager_only=True, application should not be set")
        if not b["resource_manager_only"] and b["application"] is None:
            raise Reject("ERROR: When resource_manager_only=False, application should be set")
        i = cfg["infrastructure"]
        cpu = mem = 0.0
        if cfg["mode"] in ("cloud", "edge"):
            cpu = i[cfg["mode"] + "_cores"] - 0.5
            mem = i[cfg["mode"] + "_memory"] - 0.5
        for s in [
            ["application_worker_cpu", float, lambda x: x >= 0.001, False, cpu],
            ["application_worker_memory", float, lambda x: x >= 0.001, False, mem],
            ["application_endpoint_cpu", float, lambda x: x >= 0.001, False, i["endpoint_cores"]],
            ["application_endpoint_memory", float, lambda x: x >= 0.001, False, i["endpoint_memory"]],
            ["applications_per_worker", int, lambda x: x >= 1, False, 1],
            ["observability", bool, lambda x: True, False, False],
        ]:
            self.option_check(inp, cfg, sec, *s)

    def execution_model(self, inp, cfg):
        sec = "execution_model"
        if not inp.has_section(sec):
            return
        cfg[sec] = {}
        self.option_check(inp, cfg, sec, "model", str, lambda x: x in MODELS, True, None)

    def modules(self, cfg):
        m = {"provider": cfg["infrastructure"]["provider"], "rm": None, "model": None, "app": None}
        if not cfg["infrastructure"]["infra_only"]:
            rm = cfg["benchmark"]["resource_manager"]
            m["rm"] = rm if rm in RM_MODULES or rm == "mist" else None
            if "execution_model" in cfg:
                m["model"] = cfg["execution_model"]["model"]
            if not cfg["benchmark"]["resource_manager_only"]:
                m["app"] = cfg["benchmark"]["application"]
        cfg["module"] = m

    def add_options(self, inp, cfg):
        m = cfg["module"]
        i = cfg["infrastructure"]
        settings = []
        app = m["app"]
        if app == "image_classification":
            settings += [["benchmark", "frequency", int, lambda x: x >= 1, True, None],
                         ["benchmark", "duration", int, lambda x: x >= 1, False, 300]]
        elif app in ("empty", "empty_kata"):
            settings += [["benchmark", "sleep_time", int, lambda x: x >= 1, True, None]]
        elif app == "stress":
            settings += [["benchmark", "stress_app_timeout", int, lambda x: x >= 1, True, None]]
        elif app == "signal_classification":
            raise Reject("crash: application signal_classification has no add_options (empty stub)")
        p = m["provider"]
        if p in ("gcp", "aws"):
            for tier in ["cloud", "edge", "endpoint"]:
                settings.append(["infrastructure", "%s_%s" % (p, tier), str, lambda x: True, i[tier + "_nodes"] > 0, None])
            rest = ["region", "zone", "project", "credentials"] if p == "gcp" else \
                ["region", "zone", "access_keys", "secret_access_keys", "ami"]
            for k in rest:
                settings.append(["infrastructure", "%s_%s" % (p, k), str, lambda x: True, True, None])
        rm = m["rm"]
        if rm in ("kubernetes", "kubecontrol", "kube_kata", "kubeedge"):
            settings.append(["benchmark", "cache_worker", bool, lambda x: True, False, False])
        if rm in ("kubernetes", "kubecontrol", "kube_kata"):
            settings.append(["benchmark", "kube_version", str, lambda x: True, False, "v1.27.0"])
        if rm in ("kubecontrol", "kube_kata"):
            settings.append(["benchmark", "kube_deployment", str, lambda x: x in ["pod", "container", "file", "call"], False, "pod"])
        if rm == "kube_kata":
            settings.append(["benchmark", "runtime", str, lambda x: x in ["runc", "kata-qemu", "kata-fc"], False, "runc"])
            settings.append(["benchmark", "runtime_filesystem", str, lambda x: x in ["overlayfs", "devmapper"], False, "devmapper"])
        for s in settings:
            self.option_check(inp, cfg, s[0], *s[1:])

    def verify(self, cfg):
        m = cfg["module"]
        i = cfg["infrastructure"]
        clouds, edges, endpoints = i["cloud_nodes"], i["edge_nodes"], i["endpoint_nodes"]
        app, rm = m["app"], m["rm"]
        if app is not None:
            b = cfg["benchmark"]
            if app == "image_classification":
                if b["resource_manager"] == "kubecontrol":
                    raise Reject("ERROR: Application image_classification does not support kubecontrol")
                if endpoints < 1:
                    raise Reject("ERROR: Application image classification requires at least 1 endpoint")
            elif app == "empty" and b["resource_manager"] != "kubecontrol":
                raise Reject("ERROR: Application empty requires resource_manager kubecontrol")
            elif app == "empty_kata" and b["resource_manager"] != "kube_kata":
                raise Reject("ERROR: Application empty-kata requires resource_manager kube_kata")
            elif app in ("stress", "mem_usage"):
                allowed = ["kubecontrol", "kube_kata"] if self.continuum else ["kubecontrol"]
                if b["resource_manager"] not in allowed:
                    raise Reject("ERROR: Application %s requires resource_manager kubecontrol" % app)
        if m["model"] == "openfaas":
            b = cfg["benchmark"]
            if b["resource_manager"] != "kubernetes":
                raise Reject("ERROR: Execution_model openfaas requires resource_manager Kubernetes")
            if app is not None and app != "image_classification":
                raise Reject("ERROR: Serverless OpenFaaS only works with the image_classification app")
        if m["provider"] == "baremetal":
            # cloud_nodes != 1 or edge_nodes != 0 or edge_nodes < 1: always true
            raise Reject("ERROR: Baremetal only supports #clouds==1 and #endpoints>=1 at the moment")
        if rm == "kubernetes":
            if clouds < 1 or edges != 0:
                raise Reject("ERROR: Kubernetes requires #clouds>=1, #edges=0, #endpoints>=0")
            if clouds > 1 and endpoints % (clouds - 1) != 0:
                raise Reject("ERROR: Kubernetes requires (#clouds-1) % #endpoints == 0 (-1 for control)")
        elif rm == "kubeedge":
            if clouds != 1 or edges < 1:
                raise Reject("ERROR: KubeEdge requires #clouds=1, #edges>=1, #endpoints>=0")
            if endpoints % edges != 0:
                raise Reject("ERROR: KubeEdge requires #edges %% #endpoints == 0")
        elif rm == "mist":
            if clouds != 0 or edges < 1 or endpoints < 1:
                raise Reject("ERROR: Mist requires #clouds==0, #edges>=1, #endpoints>=1")
            if endpoints % edges != 0:
                raise Reject("ERROR: Mist requires #edges %% #endpoints == 0")
        elif rm in ("kubecontrol", "kube_kata"):
            if clouds < 2 or edges != 0:
                raise Reject("ERROR: kubecontrol requires #clouds>=2, #edges=0, #endpoints>=0")
            if endpoints % (clouds - 1) != 0:
                raise Reject("ERROR: kubecontrol requires (#clouds-1) % #endpoints == 0")
            if rm == "kube_kata" and cfg["benchmark"]["runtime"] == "kata-fc" and \
                    cfg["benchmark"]["runtime_filesystem"] == "overlayfs":
                raise Reject("ERROR: Overlay FS cannot be used with kata-fc - use option runtime_filesystem = devmapper")


def verdict(model, path):
    try:
        model.parse(path)
        return "accept", ""
    except Reject as e:
        return "reject", str(e)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    paths = []
    for root, _, files in os.walk(here):
        for f in files:
            if f.endswith(".cfg"):
                paths.append(os.path.relpath(os.path.join(root, f), here))
    print("# path\toriginal\tcontinuum\tagree|differs\treason (generated by original_verdict.py)")
    for p in sorted(paths):
        o, oreason = verdict(Model(False), os.path.join(here, p))
        c, creason = verdict(Model(True), os.path.join(here, p))
        agree = "agree" if o == c else "differs"
        if o == "reject" and c == "reject" and oreason != creason:
            reason = "original: %s; continuum (inline comments stripped): %s" % (oreason, creason)
        elif o == c:
            reason = oreason or "valid"
        elif o == "accept":
            reason = "original accepted; continuum rejects: %s" % creason
        else:
            reason = "original rejected (%s); continuum accepts (docs/compatibility.md)" % oreason
        print("%s\t%s\t%s\t%s\t%s" % (p, o, c, agree, reason.replace("\t", " ")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

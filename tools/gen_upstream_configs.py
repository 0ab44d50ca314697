#!/usr/bin/env python3
"""Writes tests/fixtures/upstream_configs.json: the upstream values of the
settings our full-size recipes (configs/{moco,pnl,cion,bot,mgn}.toml) hold,
each with where it came from, read from checkouts of the three upstream
repositories:

    python tools/gen_upstream_configs.py --lup DIR --lupnl DIR --cion DIR \
        [--out tests/fixtures/upstream_configs.json]

  --lup    DengpanFu/LUPerson        (lup_moco/, fast-reid/)
  --lupnl  DengpanFu/LUPerson-NL     (PNL/, fast-reid/)
  --cion   Zplusdragon/CION_ReIDZoo  (CION_Pretrain/, README.md)

Each DIR is a plain checkout or a git directory without a work tree (files
are then read with `git -C DIR show HEAD:path`). Values are parsed, never
typed in: argparse defaults with Python's `ast` (call by call when a file
does not parse as a whole, as CION's run.py does not), the launch scripts'
flags with `shlex`, fast-reid YAMLs with PyYAML and their `_BASE_` chain,
and a few constants hard-coded in the training code (named below) with
`ast` too. tests/integration/configs.rs compares the result with our configs field by
field. Needs Python 3 and PyYAML (tools/requirements.txt).
"""

import argparse
import ast
import json
import os
import posixpath
import re
import shlex
import subprocess
import sys

import yaml


class Checkout:
    """Reads files of one upstream repository (work tree or git dir)."""

    def __init__(self, path, repo):
        self.path = path
        self.repo = repo
        self.worktree = os.path.isfile(os.path.join(path, "README.md"))
        out = subprocess.run(
            ["git", "-C", path, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
        )
        self.commit = out.stdout.strip() if out.returncode == 0 else None

    def read(self, rel):
        if self.worktree:
            with open(os.path.join(self.path, rel), encoding="utf-8") as f:
                return f.read()
        out = subprocess.run(
            ["git", "-C", self.path, "show", f"HEAD:{rel}"],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"{self.repo}: cannot read {rel}: {out.stderr.strip()}")
        return out.stdout


def entry(value, source):
    return {"value": value, "from": source}


# ---------------------------------------------------------------- argparse


def _literal(node, text):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.get_source_segment(text, node)


def _calls_in(text):
    """`parser.add_argument(...)` calls of `text` as ast.Call nodes: from the
    whole module when it parses, else one call at a time (a file with a
    syntax error elsewhere still yields its other arguments)."""
    try:
        tree = ast.parse(text)
        return [
            (n, text)
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "add_argument"
        ], []
    except SyntaxError:
        pass
    calls, broken = [], []
    for m in re.finditer(r"\w+\.add_argument\(", text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        snippet = text[m.start() : i + 1]
        try:
            node = ast.parse(snippet, mode="eval").body
            calls.append((node, snippet))
        except SyntaxError:
            line = text.count("\n", 0, m.start()) + 1
            broken.append(line)
    return calls, broken


def argparse_defaults(text):
    """{dest: {"default", "options", "type"}} of every add_argument call, and
    the line numbers of calls that do not parse."""
    calls, broken = _calls_in(text)
    out = {}
    for call, src in calls:
        opts = [a.value for a in call.args if isinstance(a, ast.Constant)]
        kw = {k.arg: k.value for k in call.keywords}
        if "dest" in kw:
            dest = kw["dest"].value
        else:
            longs = [o for o in opts if o.startswith("--")]
            dest = (longs[0] if longs else opts[0]).lstrip("-").replace("-", "_")
        default = _literal(kw["default"], src) if "default" in kw else None
        typ = kw["type"].id if "type" in kw and isinstance(kw["type"], ast.Name) else None
        out[dest] = {"default": default, "options": opts, "type": typ}
    return out, broken


def _cast(value, typ, default):
    if typ == "int":
        return int(value)
    if typ == "float":
        return float(value)
    if typ is None and isinstance(default, bool):
        return value
    if typ is None and isinstance(default, int):
        return int(value)
    if typ is None and isinstance(default, float):
        return float(value)
    return value


def command_flags(cmd, args):
    """The `--flag value` pairs after the python script in the shell command
    `cmd`, by argparse dest, cast with the argument's type; plus the GPU
    count (CUDA_VISIBLE_DEVICES, --nproc_per_node)."""
    words = shlex.split(cmd.replace("\\\n", " "), comments=True)
    flags, extra = {}, {}
    by_opt = {o: d for d, a in args.items() for o in a["options"]}
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("CUDA_VISIBLE_DEVICES="):
            extra["CUDA_VISIBLE_DEVICES"] = len(w.split("=", 1)[1].split(","))
        elif w.startswith("--nproc_per_node"):
            if "=" in w:
                extra["nproc_per_node"] = int(w.split("=", 1)[1])
            else:
                extra["nproc_per_node"] = int(words[i + 1])
                i += 1
        elif w.startswith("-") and w in by_opt:
            dest = by_opt[w]
            a = args[dest]
            flags[dest] = (_cast(words[i + 1], a["type"], a["default"]), w)
            i += 1
        i += 1
    return flags, extra


def merged(args, flags, file_rel, cmd_rel, keys):
    """Effective values of `keys`: the command's flag, else the default."""
    out = {}
    for k in keys:
        a = args[k]
        if k in flags:
            value, flag = flags[k]
            out[k] = entry(
                value,
                f"{cmd_rel}: {flag} {value} "
                f"(argparse default in {file_rel}: {a['default']!r})",
            )
        else:
            out[k] = entry(a["default"], f"{file_rel}: argparse default")
    return out


# ------------------------------------------------------- hard-coded values


def function_defaults(text, func, cls=None):
    tree = ast.parse(text)
    scope = tree
    if cls is not None:
        scope = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    fn = next(n for n in ast.walk(scope) if isinstance(n, ast.FunctionDef) and n.name == func)
    pos = fn.args.args[len(fn.args.args) - len(fn.args.defaults) :]
    return {a.arg: ast.literal_eval(d) for a, d in zip(pos, fn.args.defaults)}


def _function(tree, name):
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def step_gamma(text):
    """The factor of the step schedule in adjust_learning_rate
    (`lr *= G if epoch >= milestone else 1.`)."""
    fn = _function(ast.parse(text), "adjust_learning_rate")
    for n in ast.walk(fn):
        if isinstance(n, ast.AugAssign) and isinstance(n.value, ast.IfExp):
            return n.value.body.value
    raise SystemExit("adjust_learning_rate: no step factor found")


def first_epoch_of(text, flag):
    """First epoch where `flag = epoch > N` (or `>=`) holds: N + 1 (or N)."""
    for n in ast.walk(ast.parse(text)):
        if (
            isinstance(n, ast.Assign)
            and isinstance(n.targets[0], ast.Name)
            and n.targets[0].id == flag
            and isinstance(n.value, ast.Compare)
            and isinstance(n.value.comparators[0], ast.Constant)
        ):
            bound = n.value.comparators[0].value
            op = n.value.ops[0]
            if isinstance(op, ast.Gt):
                return bound + 1
            if isinstance(op, ast.GtE):
                return bound
    raise SystemExit(f"no `{flag} = epoch > N` found")


def loss_factors(text, scale):
    """Constants multiplying `...LOSSES.<scale>.SCALE` in fast-reid's MGN
    losses, with how often each appears."""
    found = {}
    for n in ast.walk(ast.parse(text)):
        if (
            isinstance(n, ast.BinOp)
            and isinstance(n.op, ast.Mult)
            and isinstance(n.right, ast.Constant)
            and isinstance(n.left, ast.BinOp)
            and isinstance(n.left.right, ast.Attribute)
            and n.left.right.attr == "SCALE"
            and isinstance(n.left.right.value, ast.Attribute)
            and n.left.right.value.attr == scale
        ):
            found[n.right.value] = found.get(n.right.value, 0) + 1
    if len(found) != 1:
        raise SystemExit(f"MGN {scale} factors: {found}")
    (value, count), = found.items()
    return value, count


# ------------------------------------------------------------- fast-reid


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def fastreid_config(co, rel):
    """The YAML at `rel` merged over its `_BASE_` chain; and the chain."""
    cfg = yaml.safe_load(co.read(rel)) or {}
    chain = [rel]
    base = cfg.pop("_BASE_", None)
    if base is not None:
        parent, parents = fastreid_config(co, posixpath.normpath(posixpath.join(posixpath.dirname(rel), base)))
        cfg = _merge(parent, cfg)
        chain = parents + chain
    return cfg, chain


def fastreid_defaults(text):
    """`_C.A.B = value` of fastreid/config/defaults.py (literals and
    arithmetic on them)."""

    def ev(node):
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops = {ast.Mult: lambda: a * b, ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Div: lambda: a / b}
            return ops[type(node.op)]()
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        return ast.literal_eval(node)

    out = {}
    for n in ast.parse(text).body:
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Attribute):
            parts, t = [], n.targets[0]
            while isinstance(t, ast.Attribute):
                parts.append(t.attr)
                t = t.value
            if isinstance(t, ast.Name) and t.id == "_C":
                try:
                    out[".".join(reversed(parts))] = ev(n.value)
                except (ValueError, KeyError, TypeError):
                    pass
    return out


def fastreid_values(co, rel, defaults_rel, keys):
    cfg, chain = fastreid_config(co, rel)
    defaults = fastreid_defaults(co.read(defaults_rel))
    out = {}
    for key in keys:
        node, where = cfg, None
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            # the last file of the chain that sets it
            for f in reversed(chain):
                c = yaml.safe_load(co.read(f)) or {}
                for part in key.split("."):
                    c = c.get(part) if isinstance(c, dict) else None
                if c is not None:
                    where = f
                    break
            out[key] = entry(node, f"{where} (merged _BASE_ chain {' > '.join(chain)})")
        elif key in defaults:
            out[key] = entry(defaults[key], f"{defaults_rel} (not set in {' > '.join(chain)})")
        else:
            raise SystemExit(f"{rel}: {key} not found")
    return out, chain


# ------------------------------------------------------------------ recipes


def moco(lup):
    f, s = "lup_moco/lup_moco.py", "lup_moco/scripts/run_moco.sh"
    args, broken = argparse_defaults(lup.read(f))
    flags, extra = command_flags(lup.read(s), args)
    keys = [
        "arch", "epochs", "batch_size", "optimizer", "warmup_epochs", "lr", "schedule",
        "momentum", "weight_decay", "seed", "moco_dim", "T", "moco_k", "moco_m", "mlp",
        "cos", "aug_type", "mean_type", "mix",
    ]
    out = merged(args, flags, f, s, keys)
    out["gpus"] = entry(extra["CUDA_VISIBLE_DEVICES"], f"{s}: CUDA_VISIBLE_DEVICES")
    t = function_defaults(lup.read("lup_moco/libs/transform.py"), "get_lup_transformer")
    for k in ("height", "width"):
        out[f"get_lup_transformer.{k}"] = entry(
            t[k], "lup_moco/libs/transform.py: get_lup_transformer default"
        )
    return out, broken


def pnl(nl):
    f, s = "PNL/lup_pnl.py", "PNL/scripts/run_pnl.sh"
    text = nl.read(f)
    args, broken = argparse_defaults(text)
    flags, extra = command_flags(nl.read(s), args)
    keys = [
        "arch", "epochs", "batch_size", "optimizer", "warmup_epochs", "lr", "schedule",
        "momentum", "weight_decay", "seed", "moco_dim", "T", "moco_k", "moco_m", "proto_m",
        "alpha", "pseudo_th", "start_clean_epoch", "start_supcont_epoch", "cls_dim",
        "w_inst", "w_proto", "cos", "aug_type", "mean_type", "mix",
    ]
    out = merged(args, flags, f, s, keys)
    out["gpus"] = entry(extra["CUDA_VISIBLE_DEVICES"], f"{s}: CUDA_VISIBLE_DEVICES")
    out["step_gamma"] = entry(step_gamma(text), f"{f}: adjust_learning_rate (hard-coded)")
    out["first_proto_epoch"] = entry(
        first_epoch_of(text, "is_proto"), f"{f}: train() `is_proto = epoch > 0` (hard-coded)"
    )
    tr = nl.read("PNL/libs/transform.py")
    for fn in ("get_reid_train_transformer", "get_lup_transformer"):
        t = function_defaults(tr, fn)
        for k in ("height", "width"):
            out[f"{fn}.{k}"] = entry(t[k], f"PNL/libs/transform.py: {fn} default")
    return out, broken


def cion(ci):
    f = "CION_Pretrain/run.py"
    args, broken = argparse_defaults(ci.read(f))
    readme = ci.read("README.md")
    cmd = next(l for l in readme.splitlines() if "run.py" in l and "--arch" in l)
    flags, extra = command_flags(cmd, args)
    keys = [
        "image_size", "arch", "output_dim", "norm_last_layer", "momentum_teacher",
        "use_bn_in_head", "gradual_epochs", "gradual_instances", "warmup_teacher_temp",
        "teacher_temp", "warmup_teacher_temp_epochs", "optimizer", "weight_decay",
        "weight_decay_end", "clip_grad", "use_fp16", "batch_size_per_gpu", "epochs",
        "freeze_last_layer", "lr", "warmup_epochs", "min_lr", "crop_size",
        "global_crops_scale", "local_crops_number", "local_crops_scale", "seed",
    ]
    out = merged(args, flags, f, "README.md (ResNet50-IBN command)", keys)
    for k in ("global_crops_scale", "local_crops_scale"):
        out[k]["value"] = list(out[k]["value"])
    out["nproc_per_node"] = entry(
        extra["nproc_per_node"], "README.md (ResNet50-IBN command): --nproc_per_node"
    )
    loss = function_defaults(ci.read("CION_Pretrain/loss.py"), "__init__", "GradualIdentityDINOLoss")
    for k in ("student_temp", "center_momentum", "teacher_temp"):
        out[f"loss.{k}"] = entry(
            loss[k], "CION_Pretrain/loss.py: GradualIdentityDINOLoss.__init__ default (run.py passes none)"
        )
    head = function_defaults(ci.read("CION_Pretrain/models/Head.py"), "__init__", "DINOHead")
    for k in ("hidden_dim", "bottleneck_dim", "nlayers"):
        out[f"head.{k}"] = entry(head[k], "CION_Pretrain/models/Head.py: DINOHead.__init__ default")
    return out, broken


FASTREID = "fast-reid/fastreid/config/defaults.py"

BOT_KEYS = [
    "MODEL.BACKBONE.DEPTH", "MODEL.BACKBONE.WITH_IBN", "MODEL.BACKBONE.LAST_STRIDE",
    "MODEL.HEADS.NECK_FEAT", "MODEL.HEADS.POOL_LAYER", "MODEL.HEADS.CLS_LAYER",
    "MODEL.LOSSES.CE.EPSILON", "MODEL.LOSSES.TRI.MARGIN", "MODEL.LOSSES.TRI.HARD_MINING",
    "INPUT.SIZE_TRAIN", "DATALOADER.NUM_INSTANCE", "SOLVER.OPT", "SOLVER.MAX_ITER",
    "SOLVER.BASE_LR", "SOLVER.BIAS_LR_FACTOR", "SOLVER.WEIGHT_DECAY",
    "SOLVER.WEIGHT_DECAY_BIAS", "SOLVER.IMS_PER_BATCH", "SOLVER.SCHED", "SOLVER.STEPS",
    "SOLVER.GAMMA", "SOLVER.WARMUP_FACTOR", "SOLVER.WARMUP_ITERS", "TEST.EVAL_PERIOD",
]

MGN_KEYS = [
    "MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.DEPTH", "MODEL.BACKBONE.WITH_IBN",
    "MODEL.BACKBONE.WITH_NL", "MODEL.BACKBONE.LAST_STRIDE", "MODEL.BACKBONE.EXTRA_BN",
    "MODEL.FREEZE_LAYERS", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD",
    "MODEL.HEADS.EMBEDDING_DIM", "MODEL.HEADS.NECK_FEAT", "MODEL.HEADS.POOL_LAYER",
    "MODEL.HEADS.CLS_LAYER", "MODEL.HEADS.SCALE", "MODEL.HEADS.MARGIN",
    "MODEL.LOSSES.CE.EPSILON", "MODEL.LOSSES.CE.SCALE", "MODEL.LOSSES.TRI.MARGIN",
    "MODEL.LOSSES.TRI.SCALE", "MODEL.LOSSES.TRI.HARD_MINING", "INPUT.SIZE_TRAIN",
    "INPUT.DO_AUTOAUG", "DATALOADER.NUM_INSTANCE", "SOLVER.OPT", "SOLVER.MAX_ITER",
    "SOLVER.BASE_LR", "SOLVER.BIAS_LR_FACTOR", "SOLVER.WEIGHT_DECAY",
    "SOLVER.IMS_PER_BATCH", "SOLVER.SCHED", "SOLVER.DELAY_ITERS", "SOLVER.ETA_MIN_LR",
    "SOLVER.WARMUP_FACTOR", "SOLVER.WARMUP_ITERS", "SOLVER.FREEZE_ITERS",
    "TEST.EVAL_PERIOD",
]


def bot(lup):
    out, chain = fastreid_values(lup, "fast-reid/configs/Market1501/bagtricks_R50.yml", FASTREID, BOT_KEYS)
    return out, chain


def mgn(lup, nl):
    rel = "fast-reid/configs/CMDM/mgn_R50_moco.yml"
    out, chain = fastreid_values(lup, rel, FASTREID, MGN_KEYS)
    # LUPerson-NL's fast-reid README runs the same config: the chain must be
    # byte-identical there.
    _, nl_chain = fastreid_config(nl, rel)
    same = nl_chain == chain and all(lup.read(f) == nl.read(f) for f in chain)
    arch = "fast-reid/fastreid/modeling/meta_arch/mgn.py"
    text = lup.read(arch)
    ce, n_ce = loss_factors(text, "CE")
    tri, n_tri = loss_factors(text, "TRI")
    out["mgn.ce_factor"] = entry(ce, f"{arch}: losses, CE.SCALE * {ce} on each of {n_ce} heads (hard-coded)")
    out["mgn.triplet_factor"] = entry(tri, f"{arch}: losses, TRI.SCALE * {tri} on each of {n_tri} terms (hard-coded)")
    return out, chain, same


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lup", required=True, help="DengpanFu/LUPerson checkout or git dir")
    p.add_argument("--lupnl", required=True, help="DengpanFu/LUPerson-NL checkout or git dir")
    p.add_argument("--cion", required=True, help="Zplusdragon/CION_ReIDZoo checkout or git dir")
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument(
        "--out", default=os.path.join(here, "..", "tests", "fixtures", "upstream_configs.json")
    )
    a = p.parse_args()
    lup = Checkout(a.lup, "DengpanFu/LUPerson")
    nl = Checkout(a.lupnl, "DengpanFu/LUPerson-NL")
    ci = Checkout(a.cion, "Zplusdragon/CION_ReIDZoo")

    moco_v, moco_broken = moco(lup)
    pnl_v, pnl_broken = pnl(nl)
    cion_v, cion_broken = cion(ci)
    bot_v, bot_chain = bot(lup)
    mgn_v, mgn_chain, mgn_same = mgn(lup, nl)

    def src(co, files, broken=()):
        d = {"repo": co.repo, "commit": co.commit, "files": files}
        if broken:
            d["unparsed_add_argument_lines"] = list(broken)
        return d

    doc = {
        "generator": "tools/gen_upstream_configs.py",
        "note": "Upstream values of the settings our full-size recipes hold; "
        "`from` names the file (and the flag or default) each came from. "
        "Compared with configs/*.toml by tests/integration/configs.rs.",
        "recipes": {
            "moco": {
                "source": src(lup, ["lup_moco/lup_moco.py", "lup_moco/scripts/run_moco.sh", "lup_moco/libs/transform.py"], moco_broken),
                "values": moco_v,
            },
            "pnl": {
                "source": src(nl, ["PNL/lup_pnl.py", "PNL/scripts/run_pnl.sh", "PNL/libs/transform.py"], pnl_broken),
                "values": pnl_v,
            },
            "cion": {
                "source": src(ci, ["CION_Pretrain/run.py", "README.md", "CION_Pretrain/loss.py", "CION_Pretrain/models/Head.py"], cion_broken),
                "values": cion_v,
            },
            "bot": {
                "source": src(lup, bot_chain + [FASTREID]),
                "values": bot_v,
            },
            "mgn": {
                "source": dict(
                    src(lup, mgn_chain + [FASTREID, "fast-reid/fastreid/modeling/meta_arch/mgn.py"]),
                    same_in={"repo": nl.repo, "commit": nl.commit, "identical": mgn_same},
                ),
                "values": mgn_v,
            },
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    n = sum(len(r["values"]) for r in doc["recipes"].values())
    print(f"wrote {a.out}: {n} values from 3 repositories")


if __name__ == "__main__":
    main()

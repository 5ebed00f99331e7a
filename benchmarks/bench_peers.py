"""Peer benchmark: SE3Potential and GATv2Potential against MACE on the same aspirin data and budget.

Every model is trained on the same rMD17-style split of the aspirin GFN2-xTB MD set
(``benchmarks/data/aspirin_gfn2_md.extxyz.gz``, card in ``data_cards/``: 950 training, 50
validation, 1000 test frames), for the same epochs with batch 5, on one thread each, and scored by
one code path (``benchmarks/peers/score.py``: its ASE calculator over the 1000 test frames, in
float64). MACE runs in its own cached virtual environment (``benchmarks/peers/mace_peer.py``); ours
through ``equiformer-lite train`` with ``configs/se3_molecule.yaml`` / ``configs/gatv2_molecule.yaml``.

Each run writes ``OUT/{model}_e{epochs}[_{tag}].json`` (settings, test errors, training time,
structures/s, the validation learning curve, the fraction of clipped steps) and is reused by later
invocations until its data or settings change (``--rerun`` forces it). The summary of all runs
with the same epochs goes to ``OUT/summary_e{epochs}.md`` and ``OUT/learning_curves_e{epochs}.png``
(validation force MAE against epoch and against training time).

    python benchmarks/bench_peers.py --models mace se3 gatv2 --epochs 8
    python benchmarks/bench_peers.py --models se3 --epochs 8 --tag lmax1 --set model.lmax=1

By default the runs go one after the other, alone on the machine (time them with nothing else
busy); ``--concurrent`` trains them at the same time, one thread each.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

# This checkout first: its benchmark helpers, and its package (a run from a copy of the repository
# reads the copy's model defaults, as its training subprocesses do).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from peers import data as peer_data  # noqa: E402
from peers import mace_peer, ours  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCORE = Path(__file__).resolve().parent / "peers" / "score.py"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "peers"
DEFAULT_WORK = Path.home() / ".cache" / "equiformer_lite" / "bench_peers"
MODELS = ("mace", "se3", "gatv2")


def parse_overrides(items: list[str]) -> dict:
    """``section.key=value`` (value parsed as YAML) -> ``{section: {key: value}}``."""
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section in ("model", "training", "data")):
            raise SystemExit(f"--set takes section.key=value with section model, training or data; got {item!r}")
        overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    return overrides


def result_path(out: Path, model: str, epochs: int, tag: str | None) -> Path:
    return out / f"{model}_e{epochs}{'_' + tag if tag else ''}.json"


def fingerprint(model: str, split: dict, epochs: int, overrides: dict) -> dict:
    """What a stored result depends on: reuse it only while all of this is unchanged."""
    settings = mace_peer.settings(epochs) if model == "mace" else ours.run_config(ours.RECIPES[model], split, epochs, 1, overrides)
    if model != "mace":
        settings.pop("data")  # paths differ between machines; the data are identified by their hash
        settings["model_constructor"] = ours.model_constructor_config(settings["model"])
        settings["package_sha256"] = ours.package_sha256()
    return {"model": model, "epochs": epochs, "data_sha256": split["source_sha256"], "split": split["sizes"],
            "split_seed": split["seed"], "settings": settings}


def train_one(model: str, split: dict, epochs: int, work: Path, overrides: dict, tag: str | None) -> dict:
    workdir = work / f"{model}_e{epochs}{'_' + tag if tag else ''}"
    if model == "mace":
        if overrides:
            raise SystemExit("--set applies to our models only; MACE runs with its documented settings")
        return mace_peer.train(split, epochs, workdir)
    return ours.train(model, split, epochs, workdir, overrides=overrides)


def score(run: dict, split: dict, workdir: Path) -> dict:
    out = workdir / "score.json"
    env = ours.checkout_env(1) if run["calculator"] == "equiformer" else dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run([run["python"], str(SCORE), "--calculator", run["calculator"], "--model", run["model"],
                    "--frames", str(split["test"]), "--energy-key", split["energy_key"],
                    "--forces-key", split["forces_key"], "--out", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def summarize(out: Path, epochs: int) -> None:
    """Markdown table and learning-curve plot of every stored result with this many epochs."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob(f"*_e{epochs}*.json"))]
    results = [r for r in results if r["fingerprint"]["epochs"] == epochs]  # not "_e8" inside a tag
    if not results:
        return
    lines = [f"# Peer benchmark, {epochs} epochs (aspirin GFN2-xTB, 950/50/1000, batch 5, one thread each)", "",
             "| run | train time | structures/s | test E MAE (meV) | test F MAE (meV/Å) | clipped steps | parameters |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        clipped = f"{100 * r['clipped_fraction']:.1f} %" if r.get("clipped_fraction") is not None else "n/a"
        lines.append(f"| {r['name']} | {r['train_time_s'] / 60:.1f} min | {r['structures_per_s']:.1f} | "
                     f"{r['test']['energy_mae_meV']:.1f} | {r['test']['forces_mae_meV_per_A']:.1f} | {clipped} | "
                     f"{r.get('num_parameters') or 'n/a'} |")
    lines += ["", "Reproduce (each run's command; a stored result is reused until its data or settings change):", ""]
    lines += [f"- {r['name']}: `{r['command']}`" for r in results]
    (out / f"summary_e{epochs}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for r in results:
        curve = r["curve"]
        y = [p["val_forces_mae_meV_per_A"] for p in curve]
        axes[0].plot([p["epoch"] for p in curve], y, marker="o", label=r["name"])
        axes[1].plot([p["train_time_s"] / 60 for p in curve], y, marker="o", label=r["name"])
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("training time (min, one thread)")
    axes[0].set_ylabel("validation force MAE (meV/Å)")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[1].legend()
    fig.suptitle(f"aspirin GFN2-xTB, {epochs} epochs")
    fig.tight_layout()
    fig.savefig(out / f"learning_curves_e{epochs}.png", dpi=120)


def budget_free(fp: dict) -> dict:
    """A fingerprint without its epoch count (and the code hash): the settings two runs of
    different lengths must share for one's time per epoch to stand for the other's."""
    settings = json.loads(json.dumps(fp["settings"]))
    settings.get("training", {}).pop("epochs", None)
    settings.pop("package_sha256", None)
    return {**{k: v for k, v in fp.items() if k != "epochs"}, "settings": settings}


def epochs_for_time(reference: Path, ours_run: Path, expected: dict | None = None) -> int:
    """Epochs of our model that fit in the training time of a stored ``reference`` run, at the
    time per epoch of a stored run ``ours_run`` with the same settings (checked against the
    ``expected`` fingerprint of the run to be made, when given)."""
    target = json.loads(reference.read_text())["train_time_s"]
    run = json.loads(ours_run.read_text())
    if expected is not None and budget_free(run["fingerprint"]) != budget_free(expected):
        raise SystemExit(f"--epoch-time-from {ours_run}: that run's model, data or settings differ from this run's; "
                         "its time per epoch does not stand for this one")
    per_epoch = run["train_time_s"] / run["fingerprint"]["epochs"]
    return max(1, int(target // per_epoch))


def num_parameters(run: dict) -> int | None:
    if run["calculator"] != "equiformer":
        return None
    from equiformer_lite import load_model

    return sum(p.numel() for p in load_model(run["model"]).parameters())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result JSONs, summary and plot")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="split files, training runs (not committed)")
    parser.add_argument("--data", type=Path, default=peer_data.ASPIRIN)
    parser.add_argument("--tag", default=None, help="suffix of the result name, for variants made with --set")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override our recipe (model or training), e.g. --set model.channels=32")
    parser.add_argument("--rerun", action="store_true", help="train again even if a matching result is stored")
    parser.add_argument("--concurrent", action="store_true", help="train the models at the same time, one thread each")
    parser.add_argument("--summary-only", action="store_true", help="only rewrite the summary of the stored results")
    parser.add_argument("--match-time-of", type=Path, default=None, metavar="RESULT_JSON",
                        help="equal wall time: train for as many epochs as fit in that stored run's training time, "
                             "at the epoch time of --epoch-time-from (a stored run of the same model and settings)")
    parser.add_argument("--epoch-time-from", type=Path, default=None, metavar="RESULT_JSON")
    args = parser.parse_args(argv)
    if args.summary_only:
        summarize(args.out, args.epochs)
        return
    if args.match_time_of is not None:
        if args.epoch_time_from is None:
            parser.error("--match-time-of needs --epoch-time-from")
        if len(args.models) != 1 or args.models[0] == "mace":
            parser.error("--match-time-of takes one of our models in --models")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    overrides = parse_overrides(args.overrides)
    split = peer_data.split_files(args.data, args.work / "splits")
    if args.match_time_of is not None:
        model = args.models[0]
        args.epochs = epochs_for_time(args.match_time_of, args.epoch_time_from,
                                      fingerprint(model, split, 1, overrides))
        print(f"equal wall time: {args.epochs} epochs fit in the training time of {args.match_time_of.name}")
    args.out.mkdir(parents=True, exist_ok=True)

    todo = []
    for model in args.models:
        path = result_path(args.out, model, args.epochs, args.tag)
        expected = fingerprint(model, split, args.epochs, overrides if model != "mace" else {})
        if path.exists() and not args.rerun and json.loads(path.read_text()).get("fingerprint") == expected:
            print(f"{path.name}: stored result with the same data and settings, reused (--rerun to train again)")
            continue
        todo.append((model, path, expected))

    def run(item):
        model, path, expected = item
        print(f"training {model} for {args.epochs} epochs ...", flush=True)
        return item, train_one(model, split, args.epochs, args.work, overrides if model != "mace" else {}, args.tag)

    with ThreadPoolExecutor(max_workers=len(todo) if args.concurrent else 1) as pool:
        finished = list(pool.map(run, todo))
    for (model, path, expected), trained in finished:
        test = score(trained, split, Path(trained["model"]).parent)
        name = model if not args.tag else f"{model} ({args.tag})"
        result = {
            "name": name, "fingerprint": expected, "test": test, **trained,
            "structures_per_s": split["sizes"][0] * args.epochs / trained["train_time_s"],
            "num_parameters": num_parameters(trained), "concurrent": args.concurrent,
            "command": "python benchmarks/bench_peers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.date.today().isoformat(), "threads": 1,
        }
        for key in ("model", "python"):  # machine-specific paths
            result[key] = str(Path(result[key]).name)
        path.write_text(json.dumps(result, indent=2))
        print(f"{name}: test E MAE {test['energy_mae_meV']:.1f} meV, F MAE {test['forces_mae_meV_per_A']:.1f} meV/Å, "
              f"train {trained['train_time_s'] / 60:.1f} min -> {path}")
    summarize(args.out, args.epochs)


if __name__ == "__main__":
    main()

"""A sweep's answer as pictures: each final metric against each swept number.

    python train.py --config=configs/lr_range.py

For every swept numeric field (a learning rate, a momentum, an L2 weight,
a width...), the sweep's top-level `aggregate` run gets IMAGES
`views/sweep/<metric>_vs_<field>`: the final train and eval loss (and accuracy
for a classifier; with a `target_eval_loss`, the steps to it and the noise
scale B_simple there; with `probes.connectivity`, the barriers between seed
pairs and the fraction connected, with its 95% interval) of every point
against the field's value, the median over seeds with a band from their
min to their max, on a log axis where the values span more than 10x
(either axis), the best loss or accuracy circled. They
are read from each point's aggregate run, so a sweep draws the same
charts whether or not it writes a run per member (above
`max_member_runs`). Members that diverged are left out (a point where all
did has no value). With other fields swept too, each of their
combinations is a line of its own.
"""

import numpy as np

from dashboards import pictures
from plumbing import command_line


def numeric_fields(spec: dict[str, tuple]) -> list[str]:
    """The swept fields whose values are numbers, two or more of them."""
    return [
        key
        for key, values in spec.items()
        if len(set(values)) > 1
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ]


# probes.connectivity's fraction of seed pairs connected: charted with its
# 95% interval as the band (not over seeds: one number per point).
CONNECTED = "connectivity/connected"


def metrics(final: dict[str, float]) -> list[str]:
    """The final metrics a sweep charts: losses, accuracies if classified,
    with a target_eval_loss the steps to it and the noise scale there, and
    the barriers between seed pairs and the fraction of them connected
    (probes.connectivity)."""
    wanted = ("train/loss", "eval/loss", "train/accuracy", "eval/accuracy",
              "eval/steps_to_target", "eval/noise_scale_at_target",
              "connectivity/train_loss_barrier", "connectivity/eval_error_barrier")  # fmt: skip
    found = [m for m in wanted if any(k.endswith(f"/aggregate/{m}/mean") for k in final)]
    return found + [CONNECTED] * any(k.endswith(f"/aggregate/{CONNECTED}") for k in final)


def _statistics(metric: str) -> tuple[str, str, str]:
    """The line and its band's two edges, as keys under POINT/aggregate/METRIC."""
    if metric == CONNECTED:
        return "", "/low95", "/high95"
    return "/median", "/min", "/max"


def _get(config, key: str):
    section, _, name = key.rpartition(".")
    for part in section.split(".") if section else []:
        config = config[part]
    return config[name]


def points(groups, diverged: set[str]) -> dict[str, object]:
    """{point: its config} of every point with a member that did not diverge."""
    alive: dict[str, object] = {}
    for group in groups:
        for member in group.members:
            if member.name not in diverged:
                alive.setdefault(member.point, member.point_config)
    return alive


def curves(field: str, metric: str, groups, final: dict, diverged: set[str], spec: dict):
    """{line: (x values, median, min, max)} over seeds (for CONNECTED: the
    fraction and its 95% interval); a line per combination of the other
    swept fields' values ('' if there are none).

    Read from each point's aggregate (`POINT/aggregate/METRIC/median`, ...
    in `final`): the same whether or not the sweep wrote a run per member.
    The aggregates are over the members still training at the end."""
    others = {k: v for k, v in spec.items() if k != field}
    found: dict[str, dict[float, tuple]] = {}
    for group in groups:
        for point in dict.fromkeys(m.point for m in group.members):
            config = next(m.point_config for m in group.members if m.point == point)
            line = command_line.point_name({k: _get(config, k) for k in others}, others)
            found.setdefault(line, {})[float(_get(config, field))] = (np.nan,) * 3
    for point, config in points(groups, diverged).items():
        stats = tuple(final.get(f"{point}/aggregate/{metric}{s}") for s in _statistics(metric))
        if None not in stats and np.isfinite(stats[0]):
            line = command_line.point_name({k: _get(config, k) for k in others}, others)
            found[line][float(_get(config, field))] = stats
    out = {}
    for line, xs in found.items():
        x = np.array(sorted(xs))
        median, low, high = (np.array(s, np.float64) for s in zip(*(xs[k] for k in x), strict=True))
        out[line] = (x, median, low, high)
    return out


def best(metric: str, lines: dict) -> tuple[str, float, float] | None:
    """(line, x, median) of the best point: the lowest loss, the highest accuracy."""
    sign = -1.0 if metric.endswith("accuracy") else 1.0
    candidates = [(sign * m, line, x) for line, (xs, median, _, _) in lines.items()
                  for x, m in zip(xs, median, strict=True) if np.isfinite(m)]  # fmt: skip
    if not candidates:
        return None
    score, line, x = min(candidates)
    return line, float(x), sign * score


def chart(field: str, metric: str, lines: dict) -> np.ndarray:
    """The picture of one metric against one field (see the module docstring)."""
    xs = np.unique(np.concatenate([x for x, *_ in lines.values()]))
    short = metric.removeprefix("connectivity/")  # (the axis has room for so much)
    log = bool(xs.min() > 0 and xs.max() / xs.min() > 10)
    series = []
    for line, (x, median, low, high) in lines.items():
        index = np.searchsorted(xs, x)  # onto the shared axis (NaN where absent)
        full = [np.full(len(xs), np.nan) for _ in range(3)]
        for target, values in zip(full, (median, low, high), strict=True):
            target[index] = values
        label = "fraction connected" if metric == CONNECTED else f"median of {short}"
        series.append(pictures.Series(full[0], line or label, full[1], full[2]))
    # The best loss or accuracy is circled; of a noise scale or a pair's
    # barrier, none is best.
    measures = metric.startswith(("train/", "eval/")) and "noise_scale" not in metric
    top = best(metric, lines) if measures else None
    mark = (top[1], top[2]) if top else None
    name = field.split(".")[-1]
    what = metric if "_target" in metric or "connectivity" in metric else f"final {metric}"
    if metric == CONNECTED:
        title = f"seed pairs linearly connected against {name}: the fraction, its 95% interval"
    else:
        over = "seed pairs" if "connectivity" in metric else "seeds"
        title = f"{what} against {name}: median over {over}, min to max"
    values = np.concatenate([np.concatenate(v[1:]) for v in lines.values()])
    values = values[np.isfinite(values)]
    log_y = bool(values.size and values.min() > 0 and values.max() / values.min() > 10)
    return pictures.chart(xs, series, title, name, log_x=log, mark=mark, log_y=log_y, y_label=short)


def tag(metric: str, field: str) -> str:
    """'views/sweep/eval_loss_vs_learning_rate'."""
    return f"views/sweep/{metric.replace('/', '_')}_vs_{field.split('.')[-1]}"


def write(writer, step: int, groups, final: dict, diverged: set[str], spec: dict) -> None:
    """Every (metric, numeric field) picture into the sweep's aggregate `writer`."""
    for field in numeric_fields(spec):
        for metric in metrics(final):
            lines = curves(field, metric, groups, final, diverged, spec)
            writer.image(tag(metric, field), chart(field, metric, lines), step)


def best_point(groups, final: dict, diverged: set[str], metric: str) -> tuple[str | None, str]:
    """(point, metric): the point with the best median final `metric` over
    its seeds (the lowest loss, the highest accuracy; `train/` in place of
    `eval/` without an eval split), for the results table to mark: from the
    points' aggregates, as `curves`. A metric the run does not log (accuracy
    for a regression) gives way to the loss."""

    def logged(name: str) -> bool:
        return any(k.endswith(f"/aggregate/{name}/median") for k in final)

    candidates = [metric, metric.replace("eval/", "train/"), "eval/loss", "train/loss"]
    metric = next((m for m in candidates if logged(m)), metric)
    sign = -1.0 if metric.endswith("accuracy") else 1.0
    medians = {point: final.get(f"{point}/aggregate/{metric}/median")
               for point in points(groups, diverged)}  # fmt: skip
    medians = {p: sign * m for p, m in medians.items() if m is not None and np.isfinite(m)}
    return (min(medians, key=medians.get) if medians else None), metric
